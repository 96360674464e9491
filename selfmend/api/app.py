"""The admin API's routes. Every route but /health and /metrics needs an ``X-Admin-Key``.

    viewer    GET  /incidents, /incidents/{id}, /status, /series/{key}/sensitivity
    operator  POST /incidents/{id}/approve, /incidents/{id}/resolve,
              PUT  /series/{key}/sensitivity
    admin     PUT  /kill-switch, PUT / DELETE /controls/{key}

What a person does here is what the CLI does, through the same core calls, and is recorded in
the audit log as ``api:<key name>``. OpenAPI at /api-docs. Every error, whatever raised it, has
one body: ``{"error": {"code": ..., "message": ...}}`` (``api/errors.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import asdict
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Request
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from selfmend.api.errors import install_error_handlers
from selfmend.api.keys import AdminKey, KeyRing, Role
from selfmend.api.metrics import registry
from selfmend.config import Settings
from selfmend.models import IncidentStatus
from selfmend.remedy.approvals import approve
from selfmend.remedy.closing import close_incident
from selfmend.remedy.switches import set_kill_switch
from selfmend.sensitivity import out_of_bounds, set_sensitivity
from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts

CONTROL_KEY = r"^[A-Za-z0-9_.:-]{1,200}$"


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("approved from the admin API", min_length=1, max_length=500)


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="What was done about it.")


class KillSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool
    action: str | None = Field(None, max_length=100, description="Only this action's switch.")
    reason: str = Field(min_length=1, max_length=500)


class SensitivityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sensitivity: float = Field(description="About this many times the default rate of alarms.")
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("sensitivity")
    @classmethod
    def _within_bounds(cls, value: float) -> float:
        problem = out_of_bounds(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class ControlValue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = Field(description="Any JSON value.")


def caller(role: Role) -> Callable[..., AdminKey]:
    """A dependency: the holder of the request's key, if the key exists and has ``role``."""

    def check(request: Request, x_admin_key: Annotated[str | None, Header()] = None) -> AdminKey:
        holder = request.app.state.keys.holder(x_admin_key)
        if holder is None:
            raise HTTPException(401, "a valid X-Admin-Key header is required")
        if holder.role < role:
            raise HTTPException(403, f"this needs the {role.name.lower()} role")
        return holder

    return check


Viewer = Annotated[AdminKey, Depends(caller(Role.VIEWER))]
Operator = Annotated[AdminKey, Depends(caller(Role.OPERATOR))]
Admin = Annotated[AdminKey, Depends(caller(Role.ADMIN))]


def create_app(
    settings: Settings, store: Store | None = None, actions: Collection[str] | None = None
) -> FastAPI:
    """The API over ``store``; ``actions`` are the names a kill switch may take, the running
    system's catalogue unless given."""
    store = store or Store.for_service(
        settings.resolved_store_url,
        schema_wait=settings.schema_wait_seconds,
        timeouts=DatabaseTimeouts.from_settings(settings),
    )
    metrics = registry(store)
    # Swagger UI's script and stylesheet come from the fastapi-offline package, not a CDN, so
    # the docs render on a machine with no internet.
    app = FastAPIOffline(
        title="selfmend admin API",
        docs_url="/api-docs",
        redoc_url=None,
        openapi_url="/api-docs/openapi.json",
        static_url="/api-docs/static",
    )
    app.state.keys = KeyRing(settings.admin_keys)
    install_error_handlers(app)

    @cache
    def known_actions() -> Collection[str]:
        if actions is not None:
            return actions
        from selfmend.system import System

        return System(settings, store).catalogue.names()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "mode": settings.mode}

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @app.get("/status")
    def status(_: Viewer) -> dict[str, Any]:
        return {
            "mode": settings.mode,
            "kill_switch": store.controls.kill_switch(),
            "controls": store.controls.all(),
            "incidents": store.incidents.count_by_status(),
        }

    @app.get("/incidents")
    def incidents(
        _: Viewer, status: IncidentStatus | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return [i.as_dict() for i in store.incidents.list(status, limit=min(max(limit, 1), 1000))]

    @app.get("/incidents/{incident_id}")
    def incident(_: Viewer, incident_id: int) -> dict[str, Any]:
        return {
            **store.incidents.get(incident_id).as_dict(),
            "audit": [asdict(step) for step in store.executions.history(incident_id)],
            "verifications": store.outcomes.verifications(incident_id),
        }

    @app.post("/incidents/{incident_id}/approve")
    def approve_incident(who: Operator, incident_id: int, body: Approval) -> dict[str, Any]:
        step = approve(
            store,
            incident_id,
            actor=f"api:{who.name}",
            reason=body.reason,
            timeout_seconds=settings.approval_timeout_seconds,
        )
        return asdict(step)

    @app.post("/incidents/{incident_id}/resolve", status_code=204)
    def resolve_incident(who: Operator, incident_id: int, body: Resolution) -> None:
        close_incident(store, incident_id, actor=f"api:{who.name}", reason=body.reason)

    # A series' key may hold "/" (in a label's value): the route takes the rest of the path.
    @app.get("/series/{key:path}/sensitivity")
    def series_sensitivity(_: Viewer, key: str) -> dict[str, Any]:
        return asdict(store.sensitivities.get(key))

    @app.put("/series/{key:path}/sensitivity")
    def set_series_sensitivity(who: Operator, key: str, body: SensitivityChange) -> dict[str, Any]:
        setting = set_sensitivity(
            store, key, body.sensitivity, actor=f"api:{who.name}", reason=body.reason
        )
        return asdict(setting)

    @app.put("/kill-switch")
    def kill_switch(who: Admin, body: KillSwitch) -> dict[str, Any]:
        set_kill_switch(
            store,
            known_actions(),
            body.enabled,
            action=body.action,
            actor=f"api:{who.name}",
            reason=body.reason,
        )
        return {"enabled": body.enabled, "action": body.action}

    @app.put("/controls/{key}")
    def set_control(
        who: Admin, key: Annotated[str, Path(pattern=CONTROL_KEY)], body: ControlValue
    ) -> dict[str, Any]:
        store.controls.set(key, body.value, actor=f"api:{who.name}")
        return {"key": key, "value": body.value}

    @app.delete("/controls/{key}", status_code=204)
    def delete_control(who: Admin, key: Annotated[str, Path(pattern=CONTROL_KEY)]) -> None:
        store.controls.delete(key, actor=f"api:{who.name}")

    return app
