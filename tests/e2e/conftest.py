from collections.abc import Iterator

import pytest

from seqferry_shared.testing.otlp import OtlpReceiver, running_receiver


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    with running_receiver() as receiver:
        yield receiver
