"""The HTTP API over real HTTP: bearer token, validation with per-path errors, request records, OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest

M = "/sequencers/incoming/miseq"
N = "/sequencers/incoming/nextseq"
RUN = "241125_M00123_0001_000000000-ABCDE"

pytestmark = pytest.mark.integration


async def test_a_valid_request_is_published_and_can_be_looked_up(service: Any, observer: Any) -> None:
    # GIVEN valid paths, one repeated and one with surrounding spaces
    body = {"paths": [f"{M}/{RUN}", f"  {N}/2411*", f"{M}/{RUN}/"], "reason": "outage", "requested_by": "lab-ops"}

    # WHEN they are posted with the token
    async with service.client() as http:
        response = await http.post("/transfers", json=body)
        # THEN 202 with the request id and where to look it up
        assert response.status_code == 202, response.text
        accepted = response.json()
        request_id = accepted["id"]
        assert response.headers["location"] == f"/transfers/{request_id}"
        assert accepted["status"] == "requested"
        assert accepted["includes"] == [f"{M}/{RUN}", f"{N}/2411*"]
        assert accepted["request_ids"] == [request_id]

        # AND GET shows the same record, also when asked by part id
        looked_up = await http.get(f"/transfers/{request_id}")
        assert looked_up.status_code == 200
        assert looked_up.json() == accepted
        assert (await http.get("/transfers/r-00000000000000000000000000000000")).status_code == 404
        assert (await http.get(f"/transfers/{request_id}-7")).status_code == 404

    # AND exactly one Transfer Requested with those patterns is on the bus
    requested = await observer.events("Transfer Requested")
    assert len(requested) == 1
    detail = requested[0]["detail"]
    assert (detail["request_id"], detail["includes"]) == (request_id, [f"{M}/{RUN}", f"{N}/2411*"])
    assert (detail["reason"], detail["requested_by"]) == ("outage", "lab-ops")


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-token"}, 403),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
    ],
)
async def test_the_bearer_token_is_required(service: Any, observer: Any, headers: dict[str, str], status: int) -> None:
    # GIVEN a request without the right token (and with an invalid body: authentication is checked first)
    async with service.client(token=None) as http:
        post = await http.post("/transfers", json={"paths": ["/etc"], "reason": ""}, headers=headers)
        get = await http.get("/transfers/r-1", headers=headers)
    # THEN it is refused and nothing is published
    assert (post.status_code, get.status_code) == (status, status)
    assert await observer.events() == []


async def test_invalid_paths_are_refused_with_per_path_errors(service: Any, observer: Any) -> None:
    # GIVEN a request mixing valid paths with traversal, pipe injection, a wildcard in the middle and a root trick
    paths = [f"{M}/{RUN}", f"{M}/../../etc", f"{M}/a|/etc", f"{M}/*/x", "/sequencers/incoming/miseq-old/x", "C:\\x"]
    async with service.client() as http:
        response = await http.post("/transfers", json={"paths": paths, "reason": "outage"})
    # THEN 422 names each bad path with its index and reason, and nothing is requested (all or nothing)
    assert response.status_code == 422
    body = response.json()
    assert "5 of 6" in body["detail"]
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [
        (1, "'.' and '..' segments not allowed"),
        (2, "'|' not allowed (it separates filter patterns)"),
        (3, "'*' allowed only as the last character"),
        (4, "path is outside the allowed roots " + ", ".join(service.settings.allowed_roots)),
        (5, "backslash not allowed (use '/'; Windows paths are not NAS paths)"),
    ]
    assert await observer.events() == []


@pytest.mark.parametrize(
    "body",
    [
        {"paths": [], "reason": "outage"},
        {"paths": [f"{M}/a"]},
        {"paths": [f"{M}/a"], "reason": ""},
        {"paths": [f"{M}/a"], "reason": "line\x1b[2J"},
        {"paths": [f"{M}/a"], "reason": "ok", "unknown": 1},
        {"paths": f"{M}/a", "reason": "ok"},
    ],
    ids=["no-paths", "no-reason", "empty-reason", "control-in-reason", "unknown-field", "paths-not-a-list"],
)
async def test_malformed_bodies_are_refused(service: Any, body: dict[str, Any]) -> None:
    async with service.client() as http:
        response = await http.post("/transfers", json=body)
    assert response.status_code == 422


async def test_lone_surrogates_are_refused_with_a_reason_not_a_server_error(service: Any, observer: Any) -> None:
    # GIVEN JSON bodies carrying a lone surrogate (valid JSON escapes, not characters) in a path and in the reason
    in_path = b'{"paths": ["/sequencers/incoming/miseq/run\\ud800"], "reason": "outage"}'
    in_reason = b'{"paths": ["/sequencers/incoming/miseq/run"], "reason": "outage \\udcff"}'
    async with service.client() as http:
        path_answer = await http.post("/transfers", content=in_path, headers={"Content-Type": "application/json"})
        reason_answer = await http.post("/transfers", content=in_reason, headers={"Content-Type": "application/json"})
    # THEN both are 422 with the reason, and nothing is requested
    assert path_answer.status_code == 422, path_answer.text
    assert path_answer.json()["errors"][0]["reason"].startswith("lone surrogate")
    assert reason_answer.status_code == 422, reason_answer.text
    assert reason_answer.json()["detail"][0]["loc"] == ["body", "reason"]
    assert await observer.events() == []


async def test_request_limits(service_factory: Any, observer: Any) -> None:
    # GIVEN a service allowing 3 paths per request
    service = service_factory(adhoc_max_lines=3, adhoc_max_request_bytes=1000)
    await service.start()
    try:
        async with service.client() as http:
            too_many = await http.post("/transfers", json={"paths": [f"{M}/{i}" for i in range(4)], "reason": "r"})
            too_big = await http.post("/transfers", json={"paths": [f"{M}/" + "x" * 990], "reason": "r"})
            huge_body = await http.post(
                "/transfers",
                content=b'{"paths": ["' + b"x" * 200_000 + b'"], "reason": "r"}',
                headers={"Content-Type": "application/json"},
            )
    finally:
        await service.stop()
    # THEN each is refused with a clear message and nothing is requested
    assert too_many.status_code == 422
    assert "more than 3 paths" in too_many.json()["detail"]
    assert too_big.status_code == 422
    assert "more than the limit of 1000 bytes" in too_big.json()["detail"]
    assert huge_body.status_code == 413
    assert await observer.events() == []


async def test_openapi_documents_the_transfer_api(service: Any) -> None:
    async with service.client(token=None) as http:
        spec = (await http.get("/openapi.json")).json()
    post = spec["paths"]["/transfers"]["post"]
    assert {"202", "401", "403", "413", "422", "503"} <= set(post["responses"])
    assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/TransferRecord")
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ValidationFailed")
    get = spec["paths"]["/transfers/{request_id}"]["get"]
    assert {"200", "401", "403", "404"} <= set(get["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["TransferRequestBody"]["examples"]
    assert schemas["TransferRecord"]["examples"]
    assert schemas["ValidationFailed"]["examples"]
    assert spec["components"]["securitySchemes"]


async def test_probes(service: Any) -> None:
    async with service.client(token=None) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert {"bucket", "bus", "table", f"queue:{service.settings.names.adhoc_queue.name}"} <= set(ready.json()["checks"])
