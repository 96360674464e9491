"""The admin API's one error body: ``{"error": {"code": ..., "message": ...}}``.

A ``SelfmendError`` gives its stable code; an HTTP error (no key, a role too low, no such
route) a code named for its status; a malformed request ``invalid_input``, with its message
naming the first bad field and ``fields`` listing every one. A client reads ``error.code`` and
never has to guess which of FastAPI's shapes it got.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from selfmend.errors import SelfmendError

STATUS_OF_ERROR = {"not_found": 404, "invalid_input": 409, "configuration": 422}
CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


def error_body(code: str, message: str, **more: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **more}}


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SelfmendError, _refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _malformed)


async def _refused(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SelfmendError)
    return JSONResponse(error_body(error.code, str(error)), STATUS_OF_ERROR.get(error.code, 400))


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    code = CODE_OF_STATUS.get(error.status_code, f"http_{error.status_code}")
    return JSONResponse(
        error_body(code, str(error.detail)), error.status_code, headers=error.headers
    )


async def _malformed(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = [
        {"loc": list(problem["loc"]), "message": problem["msg"]} for problem in error.errors()
    ]
    first = fields[0] if fields else {"loc": [], "message": "malformed request"}
    where = ".".join(str(part) for part in first["loc"])
    message = f"{where}: {first['message']}" if where else first["message"]
    return JSONResponse(error_body("invalid_input", message, fields=fields), 422)
