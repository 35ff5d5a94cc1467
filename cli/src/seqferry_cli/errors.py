"""Exit codes a pipeline can trust, and the one error family every command raises.

Each error carries its exit code, a message that says what went wrong in the user's terms, and a hint that says
what to do about it. ``__main__`` prints them without a traceback; :func:`translate` turns the AWS SDK's and the
HTTP client's exceptions into the same family.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    """The thing asked about is not good: a transfer ended in ERROR, a manifest line was rejected, doctor found an
    error, a service is not ready."""
    INVALID = 2
    """Usage or validation error: a bad option or path; nothing was sent."""
    UNAVAILABLE = 3
    """AWS or a seqferry service could not be reached, or refused the call (credentials, permissions)."""
    TIMEOUT = 4
    """``--timeout`` passed before the outcome was known; the work goes on."""
    INTERRUPTED = 130
    """Ctrl-C or SIGTERM; temporary resources were removed."""


class CliError(Exception):
    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details)


class OutcomeError(CliError):
    exit_code = ExitCode.FAILED


class InvalidInputError(CliError):
    exit_code = ExitCode.INVALID


class UnavailableError(CliError):
    exit_code = ExitCode.UNAVAILABLE


class WaitTimeoutError(CliError):
    exit_code = ExitCode.TIMEOUT


_PERMISSION_CODES = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
}


def translate(exc: BaseException) -> CliError | None:
    """The CLI error for an exception of the AWS SDK or the HTTP client; None for anything else."""
    # Imported here: the SDKs are heavy and most error paths never need them.
    import botocore.exceptions as boto  # noqa: PLC0415
    import httpx  # noqa: PLC0415

    if isinstance(exc, boto.NoCredentialsError):
        return UnavailableError(
            "no AWS credentials found",
            hint="use --profile NAME, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    if isinstance(exc, boto.ProfileNotFound):
        return InvalidInputError(str(exc), hint="profiles are read from ~/.aws/config and ~/.aws/credentials")
    if isinstance(exc, boto.NoRegionError):
        return InvalidInputError("no AWS region configured", hint="use --region, or set AWS_REGION")
    if isinstance(exc, boto.ParamValidationError):
        return InvalidInputError(f"invalid AWS request: {exc}")
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectTimeoutError | boto.ReadTimeoutError):
        return UnavailableError(
            f"cannot reach AWS: {exc}", hint="check --endpoint-url / AWS_ENDPOINT_URL, --region and the network"
        )
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        operation = getattr(exc, "operation_name", "the call")
        message = f"AWS refused {operation}: {code}: {error.get('Message', exc)}"
        if code in _PERMISSION_CODES:
            return UnavailableError(message, hint="the permissions each command needs are listed in `seqferry --help`")
        return UnavailableError(message)
    if isinstance(exc, boto.BotoCoreError):
        return UnavailableError(f"AWS SDK error: {exc}")
    if isinstance(exc, httpx.HTTPError):
        return UnavailableError(f"HTTP error: {exc}")
    return None
