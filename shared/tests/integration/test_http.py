from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI

from seqferry_shared.http import bearer_auth, create_http_app, from_state
from seqferry_shared.runtime import ServiceRuntime
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import Telemetry


def build(settings: ServiceSettings, telemetry: Telemetry) -> tuple[FastAPI, ServiceRuntime]:
    runtime = ServiceRuntime(settings, "tests", telemetry=telemetry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            runtime.start()
            yield

    app = create_http_app(title="t", settings=settings, runtime=runtime, lifespan=lifespan)
    auth = bearer_auth(settings)

    @app.post("/mutate", dependencies=[Depends(auth)])
    async def mutate() -> dict[str, Annotated[str, "ok"]]:
        return {"ok": "yes"}

    return app, runtime


async def call(app: FastAPI, method: str, path: str, **kwargs: object) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_probes_and_metrics(settings: ServiceSettings, telemetry: Telemetry) -> None:
    assert (await call(build(settings, telemetry)[0], "GET", "/healthz")).json() == {"status": "ok"}
    ready = await call(build(settings, telemetry)[0], "GET", "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"bus": "ok", "table": "ok"}
    metrics = await call(build(settings, telemetry)[0], "GET", "/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")


async def test_readyz_fails_when_a_dependency_is_missing(moto_server: object, telemetry: Telemetry) -> None:
    # GIVEN a prefix that was never bootstrapped
    settings = ServiceSettings(prefix="tnotbootstrapped", environment="test")
    app, _ = build(settings, telemetry)
    ready = await call(app, "GET", "/readyz")
    # THEN not ready, naming the failing dependency
    assert ready.status_code == 503
    assert "ResourceNotFound" in ready.json()["checks"]["table"]


async def test_bearer_token(settings: ServiceSettings, telemetry: Telemetry) -> None:
    def app() -> FastAPI:
        return build(settings, telemetry)[0]

    assert (await call(app(), "POST", "/mutate")).status_code == 401
    assert (await call(app(), "POST", "/mutate", headers={"Authorization": "Bearer nope"})).status_code == 403
    token = settings.api_token.get_secret_value()
    ok = await call(app(), "POST", "/mutate", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200


async def test_state_dependency_answers_503_until_started() -> None:
    class Thing:
        pass

    app = FastAPI()
    get_thing = from_state("thing", Thing, "thing service")

    @app.get("/thing")
    async def thing(value: Annotated[Thing, Depends(get_thing)]) -> dict[str, str]:
        return {"type": type(value).__name__}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        before = await client.get("/thing")
        app.state.thing = Thing()
        after = await client.get("/thing")
    assert (before.status_code, before.json()["detail"]) == (503, "thing service not started")
    assert after.json() == {"type": "Thing"}
