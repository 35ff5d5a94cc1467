import json
from pathlib import Path

import pytest

from seqferry_shared.events import ALL_EVENTS, TransferRequested
from seqferry_shared.events.examples import examples
from seqferry_shared.events.schema import rendered

DOCS = Path(__file__).resolve().parents[3] / "docs" / "events"


@pytest.mark.parametrize(("name", "content"), sorted(rendered().items()))
def test_docs_match_models(name: str, content: str) -> None:
    # THEN the committed schema/example files are exactly what the models export ('make schemas' rewrites them)
    assert (DOCS / name).read_text() == content


def test_every_event_has_a_valid_example() -> None:
    samples = examples()
    for model in ALL_EVENTS:
        example = json.loads((DOCS / f"{rendered_name(model.DETAIL_TYPE)}.example.json").read_text())
        assert example["detail-type"] == model.DETAIL_TYPE
        assert model.model_validate(example["detail"]) == samples[model]


def rendered_name(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "-")


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="includez"):
        TransferRequested.model_validate({"request_id": "r", "includez": ["/x"]})
