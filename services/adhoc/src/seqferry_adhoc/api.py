"""HTTP API: ``POST /transfers`` asks for a transfer, ``GET /transfers/{id}`` shows what became of it.

Both need the bearer token (``SEQFERRY_API_TOKEN``): 401 without one, 403 with a wrong one.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from seqferry_adhoc.domain.records import TransferRecord
from seqferry_adhoc.errors import RequestNotPublishedError
from seqferry_adhoc.service import AdhocService, InvalidRequestError
from seqferry_shared.http import AUTHORIZED, from_state

_PART = re.compile(r"^(?P<parent>.+)-(?P<part>[0-9]{1,4})$")


class TransferRequestBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "paths": [
                        "/sequencers/incoming/miseq/241125_M00123_0001_000000000-ABCDE",
                        "/sequencers/incoming/nextseq/2411*",
                    ],
                    "reason": "re-transfer after the NAS outage of 24 November",
                    "requested_by": "lab-ops",
                }
            ]
        },
    )

    paths: list[str] = Field(
        min_length=1,
        description=(
            "Absolute NAS paths under the allowed roots; '*' only as the last character; no '..', '|', "
            "backslash or control characters. Surrounding spaces are trimmed, repeats kept once."
        ),
    )
    reason: str = Field(min_length=1, max_length=1024, description="Why the transfer is needed (kept for audit).")
    requested_by: str = Field(default="api", min_length=1, max_length=256, description="Person or system asking.")

    @field_validator("reason", "requested_by")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
            raise ValueError("control or invisible formatting characters are not allowed")
        return value


class PathErrorModel(BaseModel):
    index: int = Field(description="0-based position in `paths`.")
    path: str = Field(description="The path, escaped and cut to 200 characters.")
    reason: str


class ValidationFailed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "2 of 3 path(s) rejected; nothing was requested",
                    "errors": [
                        {
                            "index": 1,
                            "path": "/sequencers/incoming/miseq/../../etc",
                            "reason": "'.' and '..' segments not allowed",
                        },
                        {
                            "index": 2,
                            "path": "/sequencers/incoming/miseq/a|/etc",
                            "reason": "'|' not allowed (it separates filter patterns)",
                        },
                    ],
                }
            ]
        }
    )

    detail: str
    errors: list[PathErrorModel] = Field(default_factory=list)


class ErrorMessage(BaseModel):
    detail: str


_service = from_state("service", AdhocService, "adhoc service")


ServiceDep = Annotated[AdhocService, Depends(_service)]


AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorMessage, "description": "No bearer token."},
    403: {"model": ErrorMessage, "description": "Wrong bearer token."},
}
router = APIRouter(prefix="/transfers", tags=["transfers"], dependencies=AUTHORIZED)
"""Routes under ``/transfers``: the bearer token is required (the shared ``BearerGuard`` checks it before the body
is read, and the app bounds the body while streaming); declaring it documents the scheme."""


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TransferRecord,
    summary="Request a transfer of NAS paths (bearer token)",
    responses={
        **AUTH_ERRORS,
        413: {"model": ErrorMessage, "description": "Body too large."},
        422: {
            "model": ValidationFailed,
            "description": "Some paths are not acceptable (each named with its index and reason); nothing was "
            "requested. A body that does not match the schema gets FastAPI's standard validation error.",
        },
        503: {"model": ErrorMessage, "description": "The request could not be put on the bus; retry."},
    },
)
async def request_transfer(
    body: TransferRequestBody, service: ServiceDep, response: Response
) -> TransferRecord | JSONResponse:
    """Validate every path exactly as a manifest line; if all pass, publish `Transfer Requested`.

    The answer is the request record; `GET /transfers/{id}` shows it later.
    """
    try:
        record = await service.submit(body.paths, reason=body.reason, requested_by=body.requested_by)
    except InvalidRequestError as exc:
        failed = ValidationFailed(
            detail=exc.message,
            errors=[PathErrorModel(index=e.index, path=e.path, reason=e.reason) for e in exc.errors],
        )
        return JSONResponse(failed.model_dump(), status_code=422)
    except RequestNotPublishedError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "request could not be published; retry") from exc
    response.headers["Location"] = f"/transfers/{record.id}"
    return record


@router.get(
    "/{request_id}",
    response_model=TransferRecord,
    summary="Status of an ad-hoc request (bearer token)",
    responses={**AUTH_ERRORS, 404: {"model": ErrorMessage, "description": "No such request."}},
)
async def get_transfer(
    request_id: Annotated[str, Path(max_length=128, description="Request id, or one of its part ids.")],
    service: ServiceDep,
) -> TransferRecord:
    """Accepted patterns and Transfer Requested ids of an API or manifest request."""
    record = await service.get(request_id)
    part = _PART.match(request_id)
    if record is None and part is not None:
        parent = await service.get(part["parent"])
        record = parent if parent is not None and request_id in parent.request_ids else None
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such request")
    return record
