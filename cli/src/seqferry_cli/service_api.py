"""Calls to the services' HTTP APIs (people and tools' surface: read views, probes, the simulator's POST /runs)."""

from __future__ import annotations

from typing import Any

import httpx

from seqferry_cli.errors import CliError, InvalidInputError, OutcomeError, UnavailableError
from seqferry_cli.settings import CliSettings


class ServiceApi:
    """One service's HTTP API; errors become CLI errors that name the service and its URL."""

    def __init__(self, name: str, base_url: str, *, timeout_s: float, token: str | None = None) -> None:
        if not base_url:
            raise InvalidInputError(
                f"no URL configured for the {name}",
                hint=f"set SEQFERRY_{name.upper()}_URL or {name}_url in the config file",
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise UnavailableError(
                f"the {self.name} at {self.base_url} did not answer {method} {path} in time"
            ) from exc
        except httpx.HTTPError as exc:
            raise UnavailableError(
                f"cannot reach the {self.name} at {self.base_url}: {exc}",
                hint=f"is it running? Its URL comes from SEQFERRY_{self.name.upper()}_URL",
            ) from exc

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise UnavailableError(f"the {self.name} answered {method} {path} with something that is not JSON") from exc

    def _raise_for(self, response: httpx.Response, method: str, path: str) -> None:
        if response.is_success:
            return
        detail = _detail(response)
        message = f"the {self.name} answered {method} {path} with {response.status_code}: {detail}"
        error: CliError
        if response.status_code in (401, 403):
            error = UnavailableError(message, hint="check the bearer token (--token or SEQFERRY_API_TOKEN)")
        elif response.status_code in (400, 404, 413, 422):
            error = InvalidInputError(message)
        elif response.status_code == 409:
            error = OutcomeError(message, hint="it is busy with earlier work: try again later (or another instrument)")
        else:
            error = UnavailableError(message)
        raise error

    def get(self, path: str, params: dict[str, Any] | None = None, *, missing_ok: bool = False) -> Any:
        """GET a JSON document; with ``missing_ok`` a 404 returns None."""
        response = self._send("GET", path, params=params)
        if missing_ok and response.status_code == 404:
            return None
        self._raise_for(response, "GET", path)
        return self._json(response, "GET", path)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self._send("POST", path, json=body)
        self._raise_for(response, "POST", path)
        return self._json(response, "POST", path)

    def probe(self, path: str = "/readyz") -> tuple[int, Any]:
        """Status code and JSON body (None when not JSON) of a probe; raises UnavailableError when unreachable."""
        response = self._send("GET", path)
        try:
            body = response.json()
        except ValueError:
            body = None
        return response.status_code, body


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if isinstance(detail, list):
            # FastAPI's validation errors: where and what.
            return "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                for d in detail
                if isinstance(d, dict)
            )
        return str(detail)
    return str(body)[:200]


def service_api(settings: CliSettings, name: str, *, token: str | None = None) -> ServiceApi:
    return ServiceApi(name, settings.url(name), timeout_s=settings.http_timeout_s, token=token)
