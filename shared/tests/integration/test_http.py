from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from seqferry_shared.http import AUTHORIZED, create_http_app, from_state
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

    @app.post("/mutate", dependencies=AUTHORIZED)
    async def mutate() -> dict[str, Annotated[str, "ok"]]:
        return {"ok": "yes"}

    class Item(BaseModel):
        name: str = Field(max_length=10)

    @app.put("/items", dependencies=AUTHORIZED)
    async def put_item(item: Item) -> dict[str, str]:
        return {"name": item.name}

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


class Chunks:
    """A chunked request body that counts how much of it was read."""

    def __init__(self, count: int, size: int = 256 * 1024) -> None:
        self.count, self.size, self.pulled = count, size, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield b"x" * self.size


async def test_a_body_over_the_limit_is_refused_while_it_streams(
    settings: ServiceSettings, telemetry: Telemetry
) -> None:
    # GIVEN the token and a chunked body (no Content-Length) of 8 MiB, over the 1 MiB default limit
    token = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    body = Chunks(32)
    # WHEN it is sent THEN 413 once the limit is passed, with the connection closed, the rest never read
    answer = await call(build(settings, telemetry)[0], "PUT", "/items", content=body, headers=token)
    assert answer.status_code == 413, answer.text
    assert answer.headers["connection"] == "close"
    assert body.pulled <= 6
    # ... and a declared Content-Length over the limit is refused before any byte is read
    sized = await call(build(settings, telemetry)[0], "PUT", "/items", content=b"x" * (2 * 1024 * 1024), headers=token)
    assert sized.status_code == 413


async def test_a_missing_token_is_refused_before_the_body_is_read(
    settings: ServiceSettings, telemetry: Telemetry
) -> None:
    for method, path in (("POST", "/mutate"), ("PUT", "/items"), ("DELETE", "/items"), ("PATCH", "/nowhere")):
        body = Chunks(4)
        answer = await call(build(settings, telemetry)[0], method, path, content=body)
        assert (answer.status_code, answer.headers["connection"], body.pulled) == (401, "close", 0), (method, path)
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_validation_errors_echoing_a_lone_surrogate_still_render(
    settings: ServiceSettings, telemetry: Telemetry
) -> None:
    # GIVEN a JSON body whose field holds an escaped lone surrogate (valid JSON, not a character)
    token = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}", "Content-Type": "application/json"}
    answer = await call(build(settings, telemetry)[0], "PUT", "/items", content=b'{"name": "\\ud800"}', headers=token)
    # THEN a 422 naming the field, not a 500 from rendering the error
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "name"]
