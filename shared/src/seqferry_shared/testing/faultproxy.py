"""A fault-injecting HTTP proxy between the services and the AWS emulator, owned by the tests.

Services get ``AWS_ENDPOINT_URL`` pointing here; every request is forwarded to the emulator unless a rule says
otherwise. Faults, each at a chosen rate and for chosen clients, services and operations:

- ``latency``: wait ``delay_s`` before forwarding;
- ``error``: answer without forwarding, as AWS answers when it sheds load — S3 ``503 SlowDown`` (XML), JSON
  protocol services (EventBridge, SQS, DynamoDB) ``400 ThrottlingException`` (``__type``), query protocol
  services (SNS, STS) ``400 Throttling`` (XML); with ``status: 500`` an internal error instead. These are the
  codes botocore's retry handlers treat as throttling/transient (``botocore.retries.standard``);
- ``reset``: read part of the request body, then reset the connection (the request never reached the emulator);
- ``reset_response``: forward, then reset the connection in the middle of the response body;
- ``drop_response``: forward, then reset the connection before any response byte (the emulator *did* the work;
  the client cannot know — the case that turns retries into duplicates);
- ``duplicate``: forward ``copies`` times, the extra copies after random delays up to ``delay_s`` (so they
  arrive out of order); the client gets the first answer;
- an *outage* for N seconds: every request is reset (``reset``) or held and then reset (``blackhole``).

The client of a request is the access key id in its SigV4 ``Authorization`` header (give each service its own),
the service the signing scope's service name, the operation ``X-Amz-Target``'s action (JSON protocols), the
form's ``Action`` (query protocols) or the S3 REST shape (method, path and query). Every injected fault and
every forwarded request is counted. Control API under ``/__faults__/`` (S3 bucket names cannot contain ``_``):
``PUT rules`` (a JSON list), ``POST outage`` (``{"seconds": 30, "mode": "reset"}``), ``GET stats``,
``POST reset`` (clear rules and counters).

Run: ``python -m seqferry_shared.testing.faultproxy --upstream http://127.0.0.1:4566 --port 4567``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import random
import re
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from seqferry_shared.testing.motoserver import LoopbackProcess, free_port

log = logging.getLogger("seqferry.faultproxy")

CONTROL = "/__faults__/"
KINDS = ("latency", "error", "reset", "reset_response", "drop_response", "duplicate")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/aws4_request")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "expect"}
)
JSON_SERVICES = frozenset({"events", "sqs", "dynamodb", "datasync", "logs", "kms"})


@dataclass(frozen=True, slots=True)
class Call:
    client: str
    service: str
    operation: str

    @property
    def label(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass(slots=True)
class Rule:
    kind: str
    rate: float = 1.0
    clients: frozenset[str] = frozenset()
    services: frozenset[str] = frozenset()
    operations: frozenset[str] = frozenset()
    status: int | None = None
    delay_s: float = 0.0
    copies: int = 3
    limit: int | None = None
    injected: int = 0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Rule:
        kind = str(raw.get("kind"))
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        rate = float(raw.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        return cls(
            kind=kind,
            rate=rate,
            clients=frozenset(raw.get("clients", ())),
            services=frozenset(raw.get("services", ())),
            operations=frozenset(raw.get("operations", ())),
            status=int(raw["status"]) if raw.get("status") is not None else None,
            delay_s=float(raw.get("delay_s", 0.0)),
            copies=int(raw.get("copies", 3)),
            limit=int(raw["limit"]) if raw.get("limit") is not None else None,
        )

    def matches(self, call: Call) -> bool:
        return (
            (not self.clients or call.client in self.clients)
            and (not self.services or call.service in self.services)
            and (not self.operations or call.operation in self.operations)
            and (self.limit is None or self.injected < self.limit)
        )


def s3_operation(method: str, path: str, query: dict[str, list[str]]) -> str:
    """The S3 API operation of a path-style REST request."""
    has_key = "/" in path.lstrip("/")
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPart"
        if "tagging" in query:
            return "PutObjectTagging" if has_key else "PutBucketTagging"
        return "PutObject" if has_key else "PutBucket" + next(iter(sorted(query)), "").capitalize()
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        if "delete" in query:
            return "DeleteObjects"
        return "PostObject"
    if method == "DELETE":
        if "uploadId" in query:
            return "AbortMultipartUpload"
        return "DeleteObject" if has_key else "DeleteBucket"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    if not has_key:
        if "uploads" in query:
            return "ListMultipartUploads"
        if "versions" in query:
            return "ListObjectVersions"
        if "list-type" in query:
            return "ListObjectsV2"
        return "GetBucket" + next(iter(sorted(query)), "").capitalize() if query else "ListObjects"
    if "attributes" in query:
        return "GetObjectAttributes"
    if "uploadId" in query:
        return "ListParts"
    if "tagging" in query:
        return "GetObjectTagging"
    return "GetObject"


def classify(request: web.BaseRequest, body: bytes | None) -> Call:
    auth = request.headers.get("Authorization", "")
    found = _CREDENTIAL.search(auth)
    client, service = (found.group(1), found.group(2)) if found else ("anonymous", "unknown")
    target = request.headers.get("X-Amz-Target")
    if target:
        operation = target.rpartition(".")[2]
    elif service == "s3":
        operation = s3_operation(request.method, request.path, parse_qs(request.query_string, keep_blank_values=True))
    elif body is not None:
        operation = parse_qs(body.decode(errors="replace")).get("Action", ["unknown"])[0]
    else:
        operation = request.method
    return Call(client=client, service=service, operation=operation)


def error_answer(call: Call, status: int | None) -> web.Response:
    """What AWS answers when it sheds load (or fails internally, ``status`` 500), in the service's protocol."""
    request_id = uuid.uuid4().hex
    if call.service == "s3":
        code, message = (
            ("InternalError", "We encountered an internal error.")
            if status == 500
            else (
                "SlowDown",
                "Please reduce your request rate.",
            )
        )
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return web.Response(
            status=status or 503,
            text=body,
            content_type="application/xml",
            headers={"x-amz-request-id": request_id},
        )
    if call.service in JSON_SERVICES:
        code = "InternalFailure" if status == 500 else "ThrottlingException"
        headers = {"x-amzn-RequestId": request_id}
        if call.service == "sqs":
            headers["x-amzn-query-error"] = f"{'InternalFailure' if status == 500 else 'ThrottlingException'};Sender"
        return web.Response(
            status=status or 400,
            text=json.dumps({"__type": code, "message": "Rate exceeded"}),
            content_type="application/x-amz-json-1.1" if call.service == "events" else "application/x-amz-json-1.0",
            headers=headers,
        )
    code = "InternalFailure" if status == 500 else "Throttling"
    body = (
        f"<ErrorResponse><Error><Type>{'Receiver' if status == 500 else 'Sender'}</Type><Code>{code}</Code>"
        f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return web.Response(status=status or 400, text=body, content_type="text/xml")


def _reset(request: web.BaseRequest) -> None:
    """Close the client's connection with a TCP reset (SO_LINGER 0), not a polite FIN."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@dataclass
class Outage:
    until: float = 0.0
    mode: str = "reset"
    started: float = 0.0


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    outage: Outage = field(default_factory=Outage)
    forwarded: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    by_client: Counter[str] = field(default_factory=Counter)
    # Requests that got a fault, by fingerprint (client, method, path, body hash): when each attempt came.
    attempts: dict[str, list[float]] = field(default_factory=dict)
    random: random.Random = field(default_factory=random.Random)
    session: ClientSession | None = None
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _: web.Application) -> None:
        self.session = ClientSession(
            connector=TCPConnector(limit=256, force_close=False),
            timeout=ClientTimeout(total=None, sock_read=120),
            auto_decompress=False,
        )

    async def _close(self, _: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    # -- control ----------------------------------------------------------------------------------------------
    async def control(self, request: web.Request) -> web.StreamResponse:
        action = request.path[len(CONTROL) :]
        if action == "rules" and request.method == "PUT":
            try:
                self.rules = [Rule.parse(raw) for raw in await request.json()]
            except (ValueError, TypeError, KeyError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            if request.query.get("seed"):
                self.random.seed(int(request.query["seed"]))
            return web.json_response({"rules": len(self.rules)})
        if action == "outage" and request.method == "POST":
            body = await request.json()
            mode = str(body.get("mode", "reset"))
            if mode not in ("reset", "blackhole"):
                return web.json_response({"error": f"unknown outage mode {mode!r}"}, status=400)
            now = time.monotonic()
            self.outage = Outage(until=now + float(body["seconds"]), mode=mode, started=now)
            return web.json_response({"until_s": float(body["seconds"])})
        if action == "stats" and request.method == "GET":
            return web.json_response(self.stats())
        if action == "reset" and request.method == "POST":
            self.rules = []
            self.outage = Outage()
            self.forwarded.clear()
            self.injected.clear()
            self.by_client.clear()
            self.attempts.clear()
            return web.json_response({"ok": True})
        return web.json_response({"error": f"no control action {request.method} {action}"}, status=404)

    def stats(self) -> dict[str, Any]:
        by_kind: Counter[str] = Counter()
        for key, count in self.injected.items():
            by_kind[key.split(" ", 1)[0]] += count
        retried = [times for times in self.attempts.values() if len(times) > 1]
        gaps = sorted(b - a for times in retried for a, b in itertools.pairwise(times))
        return {
            "retried_requests": len(retried),
            "retries": sum(len(times) - 1 for times in retried),
            "max_attempts": max((len(times) for times in self.attempts.values()), default=0),
            "retry_gap_s": {
                "min": gaps[0] if gaps else None,
                "median": gaps[len(gaps) // 2] if gaps else None,
                "max": gaps[-1] if gaps else None,
            },
            "forwarded": dict(self.forwarded),
            "injected": dict(self.injected),
            "injected_by_kind": dict(by_kind),
            "requests_by_client": dict(self.by_client),
            "rules": [{"kind": r.kind, "injected": r.injected} for r in self.rules],
            "outage_remaining_s": max(0.0, self.outage.until - time.monotonic()),
        }

    # -- proxying ---------------------------------------------------------------------------------------------
    @staticmethod
    def _reset(request: web.BaseRequest) -> web.StreamResponse:
        _reset(request)
        return web.Response(status=599)  # never sent: the connection is gone

    def _pick(self, call: Call) -> list[Rule]:
        chosen = []
        for rule in self.rules:
            if rule.matches(call) and self.random.random() < rule.rate:
                chosen.append(rule)
        return chosen

    def _count(self, kind: str, call: Call) -> None:
        self.injected[f"{kind} {call.client} {call.label}"] += 1

    def _attempt(self, request: web.BaseRequest, body: bytes, *, faulted: bool) -> None:
        """Remember when a request that got a fault came (and came again: a retry).

        botocore names each operation call in ``amz-sdk-invocation-id`` (the same on every retry); other
        clients' requests are told apart by client, method, path and body.
        """
        key = request.headers.get("amz-sdk-invocation-id")
        if key is None:
            key = f"{request.headers.get('Authorization', '')[:40]} {request.method} {request.path_qs} "
            key += hashlib.sha1(body, usedforsecurity=False).hexdigest()
        if faulted or key in self.attempts:
            self.attempts.setdefault(key, []).append(time.monotonic())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(CONTROL):
            return await self.control(request)
        call = classify(request, None)
        if call.operation == request.method and call.service not in ("s3", "unknown"):
            call = classify(request, await request.read())  # a query-protocol form names its Action
        self.by_client[call.client] += 1
        if time.monotonic() < self.outage.until:
            self._count(f"outage-{self.outage.mode}", call)
            if self.outage.mode == "blackhole":
                await asyncio.sleep(max(0.0, self.outage.until - time.monotonic()))
            return self._reset(request)
        rules = self._pick(call)
        kinds = {rule.kind: rule for rule in rules}
        for rule in rules:
            rule.injected += 1
        if "latency" in kinds:
            self._count("latency", call)
            await asyncio.sleep(kinds["latency"].delay_s)
        if "error" in kinds:
            self._count("error", call)
            self._attempt(request, await request.read(), faulted=True)
            return error_answer(call, kinds["error"].status)
        if "reset" in kinds:
            self._count("reset", call)
            if request.content_length:
                await request.content.readexactly(request.content_length // 2)
            return self._reset(request)
        body = await request.read()
        self._attempt(request, body, faulted=bool(kinds.keys() & {"drop_response", "reset_response"}))
        if "duplicate" in kinds:
            rule = kinds["duplicate"]
            for _ in range(rule.copies - 1):
                self._count("duplicate", call)
                task = asyncio.create_task(self._copy(request, body, self.random.uniform(0, rule.delay_s)))
                self.background.add(task)
                task.add_done_callback(self.background.discard)
        try:
            return await self._forward(request, body, call, kinds)
        except ConnectionError:  # the client went away meanwhile (killed, or gave up): nobody to answer
            self._count("client-gone", call)
            return web.Response(status=599)

    def _upstream_headers(self, request: web.BaseRequest) -> dict[str, str]:
        return {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}

    async def _copy(self, request: web.BaseRequest, body: bytes, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        assert self.session is not None
        async with self.session.request(
            request.method, self.upstream + request.path_qs, headers=self._upstream_headers(request), data=body
        ) as response:
            await response.read()

    async def _forward(
        self, request: web.Request, body: bytes, call: Call, kinds: dict[str, Rule]
    ) -> web.StreamResponse:
        assert self.session is not None
        self.forwarded[f"{call.client} {call.label}"] += 1
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=self._upstream_headers(request),
            data=body,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            if "drop_response" in kinds:
                self._count("drop_response", call)
                return self._reset(request)
            headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
            if request.method == "HEAD":
                await response.prepare(request)
                return response
            response.content_length = len(payload)
            await response.prepare(request)
            if "reset_response" in kinds and len(payload) > 1:
                self._count("reset_response", call)
                await response.write(payload[: len(payload) // 2])
                return self._reset(request)
            await response.write(payload)
            await response.write_eof()
            return response


@dataclass
class FaultProxyProcess(LoopbackProcess):
    """The proxy as a subprocess (so it never competes with the test for the GIL), driven over its control API."""

    def _call(self, method: str, action: str, body: Any = None, query: str = "") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - loopback URL
            f"{self.url}{CONTROL}{action}{query}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL
            return json.loads(response.read())

    def set_rules(self, rules: list[dict[str, Any]], *, seed: int | None = None) -> None:
        self._call("PUT", "rules", rules, f"?seed={seed}" if seed is not None else "")

    def clear(self) -> None:
        self._call("PUT", "rules", [])

    def outage(self, seconds: float, mode: str = "reset") -> None:
        self._call("POST", "outage", {"seconds": seconds, "mode": mode})

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def reset(self) -> None:
        self._call("POST", "reset", {})


def start_fault_proxy(upstream: str, *, log_path: Path | None = None, timeout_s: float = 30.0) -> FaultProxyProcess:
    port = free_port()
    log_file = log_path.open("ab") if log_path else None
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "seqferry_shared.testing.faultproxy", "--upstream", upstream, "--port", str(port)],
        stdout=log_file if log_file is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    proxy = FaultProxyProcess(port=port, process=process, log=log_file)
    proxy.wait_ready("fault proxy", proxy.stats, timeout_s)
    return proxy


def main() -> None:
    parser = argparse.ArgumentParser(description="fault-injecting HTTP proxy in front of an AWS emulator")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s faultproxy: %(message)s")
    proxy = FaultProxy(upstream=args.upstream.rstrip("/"))
    web.run_app(proxy.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
