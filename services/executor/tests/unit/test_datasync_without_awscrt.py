"""A deployment of the datasync backend runs without awscrt: only the local engine's byte path needs it.

The executor is imported, configured for DataSync and its app built in a fresh interpreter in which ``awscrt``
cannot be imported (a meta-path finder refuses it, as if it were not installed).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_AWSCRT = textwrap.dedent(
    """
    import sys

    class NoAwsCrt:
        def find_spec(self, name, path=None, target=None):
            if name == "awscrt" or name.startswith("awscrt."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, NoAwsCrt())
    """
)

DATASYNC_APP = textwrap.dedent(
    """
    from seqferry_executor.__main__ import main  # noqa: F401 - the entry point's imports
    from seqferry_executor.app import create_app
    from seqferry_executor.backends.factory import build_backend  # noqa: F401
    from seqferry_executor.backends.datasync import DataSyncBackend  # noqa: F401
    from seqferry_executor.settings import ExecutorSettings

    settings = ExecutorSettings(
        backend="datasync",
        datasync_task_arns={"sequencers": "arn:aws:datasync:us-east-1:123456789012:task/task-0a1b2c3d4e5f67890"},
    )
    app = create_app(settings)
    assert "awscrt" not in sys.modules, "awscrt was loaded"
    print("datasync app built:", app.title)
    """
)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_AWSCRT + code], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_datasync_backend_is_importable_and_its_app_builds_without_awscrt():
    result = run(DATASYNC_APP)
    assert result.returncode == 0, result.stderr
    assert "datasync app built: seqferry executor" in result.stdout


def test_the_local_engine_is_what_needs_awscrt():
    # The blocker works: asking for the local engine in the same interpreter fails on awscrt
    result = run("from seqferry_executor.backends.local import LocalBackend\n")
    assert result.returncode != 0
    assert "No module named 'awscrt' (blocked)" in result.stderr
