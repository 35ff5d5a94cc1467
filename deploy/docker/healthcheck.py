"""Container health check: GET /healthz on the service's own port; exit 0 when it answers 200, else 1.

The image's HEALTHCHECK runs this with the image's Python (no curl in the slim base). The port comes from
``SEQFERRY_HTTP_PORT`` when set, else from the service's default port (``SEQFERRY_SERVICE`` names the service).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"notifier": 8080, "scheduler": 8081, "executor": 8082, "adhoc": 8083, "simulator": 8084}


def health_url(environ: dict[str, str]) -> str:
    port = environ.get("SEQFERRY_HTTP_PORT") or str(DEFAULT_PORTS[environ.get("SEQFERRY_SERVICE", "")])
    return f"http://127.0.0.1:{int(port)}/healthz"


def check(url: str, timeout_s: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - loopback URL built above
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    try:
        url = health_url(dict(os.environ))
    except (KeyError, ValueError) as exc:
        sys.stderr.write(f"healthcheck: cannot tell the port ({exc!r}); set SEQFERRY_HTTP_PORT\n")
        return 1
    return 0 if check(url) else 1


if __name__ == "__main__":
    raise SystemExit(main())
