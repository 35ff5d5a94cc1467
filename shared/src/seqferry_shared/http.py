"""FastAPI app factory with the probes and metrics every service exposes, bearer auth, and a uvicorn runner."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
T = TypeVar("T")


def from_state(name: str, kind: type[T], service: str) -> Callable[[Request], T]:
    """Dependency for an object the lifespan puts on ``app.state``: 503 until the service has started it."""

    def get(request: Request) -> T:
        value = getattr(request.app.state, name, None)
        if not isinstance(value, kind):
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{service} not started")
        return value

    return get


async def _run_check(name: str, check: Callable[[], Any], timeout_s: float) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check(), timeout=timeout_s)
        return name, "ok"
    except TimeoutError:
        return name, f"timeout after {timeout_s} s"
    except Exception as exc:  # noqa: BLE001 - readiness reports any dependency failure, it must not raise
        return name, f"{type(exc).__name__}: {exc}"[:300]


def create_http_app(
    *,
    title: str,
    settings: ServiceSettings,
    runtime: ServiceRuntime,
    lifespan: Lifespan,
    description: str = "",
    version: str = "0.1.0",
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.runtime = runtime
    app.state.settings = settings

    @app.get("/healthz", tags=["probes"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], summary="Dependencies (bus, table, queues) answer")
    async def readyz() -> JSONResponse:
        checks = runtime.checks
        results = dict(
            await asyncio.gather(
                *(_run_check(name, check, settings.readiness_timeout_s) for name, check in checks.items())
            )
        )
        ready = bool(checks) and all(v == "ok" for v in results.values()) and not runtime.stopping.is_set()
        code = status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": results},
            status_code=code,
        )

    @app.get(
        "/metrics",
        tags=["probes"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(runtime.telemetry.registry), media_type=CONTENT_TYPE_LATEST)

    return app


_BEARER = HTTPBearer(auto_error=False, description="SEQFERRY_API_TOKEN")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]


def bearer_auth(settings: ServiceSettings) -> Callable[..., Any]:
    """Dependency for mutating endpoints: 401 without a bearer token, 403 with a wrong one."""
    expected = settings.api_token.get_secret_value().encode()

    async def check(credentials: BearerCredentials) -> None:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid bearer token")

    return check


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the app with uvicorn; SIGTERM/SIGINT drain HTTP, then the lifespan drains consumers."""
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    uvicorn.Server(config).run()
