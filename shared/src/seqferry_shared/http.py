"""FastAPI app factory with the probes and metrics every service exposes, bearer auth, and a uvicorn runner.

Mutating requests (POST, PUT, PATCH, DELETE) of every service pass :class:`BearerGuard`, a pure ASGI middleware
that checks the bearer token from the headers alone, before any byte of the body is read, and answers 401/403
with ``Connection: close`` so the server stops reading an unauthenticated upload. The body of every request is
then bounded by FastAPI's own streaming limit (``max_body_size``: a ``Content-Length`` over the limit is refused
before reading; a chunked body is counted as it arrives and refused with 413 once it passes the limit).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any, TypeVar

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
T = TypeVar("T")

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BearerGuard:
    """Pure ASGI middleware: a mutating request without the right bearer token is refused from its headers alone.

    The body is never read for a refused request (``receive`` is not called), and the answer carries
    ``Connection: close``, so the server drops the connection instead of reading the rest of the upload. Every
    answer refusing a request for its size (413) gets ``Connection: close`` too. The token comparison is constant
    time. Endpoints still declare :func:`require_token` so that the OpenAPI document shows the security scheme.
    """

    def __init__(self, app: ASGIApp, *, token: bytes) -> None:
        self.app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING_METHODS:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            code, detail, extra = refusal
            await _refuse(send, code, detail, extra)
            return
        await self.app(scope, receive, _closing_on_413(send))

    def _refusal(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        values = [value for name, value in scope["headers"] if name == b"authorization"]
        scheme, _, credentials = (values[0] if len(values) == 1 else b"").partition(b" ")
        if scheme.lower() != b"bearer" or not credentials.strip():
            return status.HTTP_401_UNAUTHORIZED, "missing bearer token", [(b"www-authenticate", b"Bearer")]
        if not hmac.compare_digest(credentials.strip(), self._token):
            return status.HTTP_403_FORBIDDEN, "invalid bearer token", []
        return None


async def _refuse(send: Send, code: int, detail: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _closing_on_413(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == status.HTTP_413_CONTENT_TOO_LARGE:
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        await send(message)

    return wrapped


class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a response echoing untrusted input (a lone surrogate) still renders."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


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
    max_body_bytes: int | None = None,
) -> FastAPI:
    """The service's app; request bodies are bounded by ``max_body_bytes`` (default ``http_max_body_bytes``)."""
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        max_body_size=max_body_bytes if max_body_bytes is not None else settings.http_max_body_bytes,
    )
    app.state.runtime = runtime
    app.state.settings = settings
    app.add_middleware(BearerGuard, token=settings.api_token.get_secret_value().encode())
    app.add_exception_handler(RequestValidationError, _invalid_request)

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


async def require_token(request: Request, credentials: BearerCredentials) -> None:
    """Dependency for mutating endpoints: 401 without a bearer token, 403 with a wrong one.

    It reads the token from the app's settings (``app.state.settings``), so module-level routers can declare it.
    """
    settings: ServiceSettings = request.app.state.settings
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(credentials.credentials.encode(), settings.api_token.get_secret_value().encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "invalid bearer token")


AUTHORIZED = [Depends(require_token)]
"""``dependencies=AUTHORIZED`` on a route or router: it needs the bearer token (and OpenAPI says so)."""


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
