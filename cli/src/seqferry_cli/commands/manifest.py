"""`seqferry manifest`: upload an ad-hoc manifest to `s3://<bucket>/adhoc/`, show what the adhoc service made of it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import RenderableType

from seqferry_cli.context import CliContext
from seqferry_cli.errors import InvalidInputError, OutcomeError, WaitTimeoutError
from seqferry_cli.output import fields, styled, table
from seqferry_shared.resources import ADHOC_PREFIX, ADHOC_RESULTS_PREFIX, manifest_result_key


def _key(name: str) -> str:
    name = name.strip()
    if not name or name.startswith("/") or name.endswith("/") or any(ord(c) < 32 for c in name):
        raise InvalidInputError(f"--key {name!r}: use a relative object name such as 'outage-2024-11-24.txt'")
    key = ADHOC_PREFIX + name.removeprefix(ADHOC_PREFIX)
    if key.startswith(ADHOC_RESULTS_PREFIX):
        raise InvalidInputError(f"--key {name!r}: {ADHOC_RESULTS_PREFIX} holds the service's results, not manifests")
    return key


def _matches(result: dict[str, Any], version_id: str | None, etag: str | None) -> bool:
    """The result names the version just uploaded (by version id when it has one, else by ETag)."""
    manifest = result.get("manifest") or {}
    if version_id and manifest.get("version_id"):
        return bool(manifest["version_id"] == version_id)
    return bool(etag) and str(manifest.get("etag", "")).strip('"') == str(etag).strip('"')


def _result_etag(s3: Any, bucket: str, key: str) -> str | None:
    try:
        return str(s3.head_object(Bucket=bucket, Key=key)["ETag"])
    except s3.exceptions.ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _wait_for_result(
    s3: Any,
    bucket: str,
    key: str,
    *,
    previous: str | None,
    version_id: str | None,
    etag: str | None,
    interval_s: float,
    timeout_s: float,
) -> dict[str, Any]:
    """The first result object written after the upload (``previous`` is the result object's ETag before it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = s3.get_object(Bucket=bucket, Key=key)
            body = response["Body"].read()
            if response.get("ETag") != previous:
                result: dict[str, Any] = json.loads(body)
                if _matches(result, version_id, etag):
                    return result
        except s3.exceptions.NoSuchKey:
            pass
        except ValueError:
            pass  # being replaced: read it again
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"no result for this upload in s3://{bucket}/{key} after {timeout_s:g} s",
                hint="is the adhoc service running? (seqferry status)",
            )
        time.sleep(interval_s)


def _render(result: dict[str, Any], uri: str) -> Iterable[RenderableType]:
    yield fields(
        [
            ("manifest", uri),
            ("status", styled(str(result.get("status")))),
            ("requests", ", ".join(result.get("request_ids") or []) or "none"),
        ]
    )
    accepted = result.get("accepted") or []
    if accepted:
        yield table("accepted", ["line", "pattern"], ([a.get("line"), a.get("pattern")] for a in accepted))
    rejected = result.get("rejected") or []
    if rejected:
        yield table(
            "rejected",
            ["line", "text", "reason"],
            (["whole file" if r.get("line") == 0 else r.get("line"), r.get("text"), r.get("reason")] for r in rejected),
        )
    duplicates = result.get("duplicates") or []
    if duplicates:
        yield table("duplicates", ["line", "same as line"], ([d.get("line"), d.get("first_line")] for d in duplicates))


def manifest(
    ctx: typer.Context,
    *,
    file: Annotated[str, typer.Argument(help="Manifest file: one absolute NAS path per line; '-' reads stdin.")],
    key: Annotated[
        str | None, typer.Option("--key", help="Object name under adhoc/ (default: the file's name).")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait for the adhoc service's result and print it.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.2, help="Seconds between looks.")] = 1.0,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Give up waiting after this many seconds.")] = 300,
) -> None:
    """Upload an ad-hoc manifest to [bold]s3://<bucket>/adhoc/[/bold]; with --wait, print accepted and rejected lines.

    The adhoc service validates every line (the same rules as `request`) and writes its result to
    adhoc/results/<name>.json. Exit 0 when every line was accepted, 1 when some were rejected (the others were
    requested), 2 when none was accepted.

    [bold]Examples[/bold]

      seqferry manifest outage-2024-11-24.txt --wait

      ls -d /mnt/nas/sequencers/incoming/miseq/2411* | sed 's|^/mnt/nas||' | seqferry manifest - --key rerun.txt -w
    """
    cli: CliContext = ctx.obj
    if file == "-":
        if key is None:
            raise InvalidInputError("--key is required when the manifest comes from stdin")
        body = sys.stdin.buffer.read()
    else:
        path = Path(file)
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {file}: {exc.strerror or exc}") from exc
    object_key = _key(key or Path(file).name)
    bucket = cli.settings.names.bucket
    s3 = cli.aws.client("s3")
    result_key = manifest_result_key(object_key)
    # An earlier upload under the same name left a result: only a result written after this upload counts.
    previous = _result_etag(s3, bucket, result_key) if wait else None
    response = s3.put_object(Bucket=bucket, Key=object_key, Body=body, ContentType="text/plain; charset=utf-8")
    version_id = response.get("VersionId")
    etag = response.get("ETag")
    uri = f"s3://{bucket}/{object_key}"
    uploaded = {"uri": uri, "version_id": version_id, "etag": etag, "result": f"s3://{bucket}/{result_key}"}
    if not wait:
        cli.out.result(
            {"upload": uploaded, "status": "uploaded"},
            lambda: [fields([("uploaded", uri), ("version", version_id or "-"), ("result", uploaded["result"])])],
        )
        return
    cli.out.message(f"uploaded {uri}; waiting for the adhoc service's result")
    result = _wait_for_result(
        s3,
        bucket,
        result_key,
        previous=previous,
        version_id=version_id,
        etag=etag,
        interval_s=interval,
        timeout_s=timeout,
    )
    cli.out.result({"upload": uploaded, **result}, lambda: _render(result, uri))
    rejected = len(result.get("rejected") or [])
    if result.get("status") == "rejected":
        raise InvalidInputError(f"no line of {uri} was accepted; nothing was requested")
    if rejected:
        raise OutcomeError(f"{rejected} line(s) of {uri} rejected; the accepted ones were requested")
