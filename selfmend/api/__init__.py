"""The admin API (FastAPI): incidents, approvals, kill switch, live settings and /metrics.

``selfmend.api.app.create_app`` builds it; ``selfmend api`` serves it with uvicorn.
"""
