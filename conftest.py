from __future__ import annotations

import pytest

pytest_plugins = ["seqferry_shared.testing.fixtures"]

# With pytest-xdist (`make integration` runs `-n auto --dist loadgroup`), a test file stays on one worker, so its
# module fixtures (a service, a stack) start once; the container tier and the deployment checks share session
# fixtures (images, a compose project, rendered charts) and each stay on one worker as a whole.
WHOLE_DIRECTORY_GROUPS = ("tests/docker/", "tests/deploy/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        path = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else str(item.path)
        group = next((prefix for prefix in WHOLE_DIRECTORY_GROUPS if path.startswith(prefix)), path)
        item.add_marker(pytest.mark.xdist_group(group))
