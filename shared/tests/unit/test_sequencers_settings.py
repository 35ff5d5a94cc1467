from pathlib import Path

import pytest
from pydantic import ValidationError

from seqferry_shared.aws import client_kwargs
from seqferry_shared.sequencers import (
    DEFAULT_SEQUENCER_PATHS,
    REGISTRY,
    BasecallLayout,
    Instrument,
    UnknownInstrumentError,
    instrument_of_run_folder,
    instruments_for_run_folder,
    parse_sequencer_paths,
    run_of,
)
from seqferry_shared.settings import ServiceSettings

# Every instrument the registry must know (the lab's list: current and common legacy models).
REQUIRED = {
    "miseq",
    "miseqi100",
    "iseq100",
    "miniseq",
    "nextseq500",
    "nextseq550",
    "nextseq1000",
    "nextseq2000",
    "hiseq2500",
    "hiseq3000",
    "hiseq4000",
    "hiseqx",
    "novaseq6000",
    "novaseqx",
}


def test_registry_covers_every_instrument_a_lab_owns() -> None:
    assert {i.value for i in Instrument} >= REQUIRED
    assert set(REGISTRY) == set(Instrument)


@pytest.mark.parametrize("instrument", list(Instrument), ids=lambda i: i.value)
def test_each_entry_is_self_consistent(instrument: Instrument) -> None:
    spec = REGISTRY[instrument]
    # its example run-folder name matches its pattern and starts with a date in its format
    assert spec.folder_pattern.match(spec.example), spec.example
    digits = 8 if spec.date_format == "%Y%m%d" else 6
    date = spec.example.split("_")[0]
    assert date.isdigit()
    assert len(date) == digits
    # RTA finishes first; the completion marker is the last marker
    assert spec.markers[0] == "RTAComplete.txt"
    assert instrument.completion_marker == spec.markers[-1]
    assert len(set(spec.markers)) == len(spec.markers)


@pytest.mark.parametrize(
    ("instrument", "date_format", "marker", "layout"),
    [
        # the two that were silently broken: 6-digit dates, their own last marker
        (Instrument.MINISEQ, "%y%m%d", "RunCompletionStatus.xml", BasecallLayout.BGZF_PER_LANE),
        (Instrument.HISEQ4000, "%y%m%d", "SequencingComplete.txt", BasecallLayout.BCL_PER_TILE),
        (Instrument.HISEQ2500, "%y%m%d", "RTAComplete.txt", BasecallLayout.BCL_PER_TILE),
        (Instrument.HISEQX, "%y%m%d", "SequencingComplete.txt", BasecallLayout.BCL_PER_TILE),
        (Instrument.ISEQ100, "%Y%m%d", "CopyComplete.txt", BasecallLayout.BGZF_PER_LANE),
        (Instrument.MISEQ_I100, "%Y%m%d", "CopyComplete.txt", BasecallLayout.CBCL),
        (Instrument.NOVASEQX, "%Y%m%d", "CopyComplete.txt", BasecallLayout.CBCL),
        (Instrument.NOVASEQ6000, "%y%m%d", "CopyComplete.txt", BasecallLayout.CBCL),
        (Instrument.NEXTSEQ550, "%y%m%d", "RunCompletionStatus.xml", BasecallLayout.BGZF_PER_LANE),
        (Instrument.NEXTSEQ1000, "%y%m%d", "CopyComplete.txt", BasecallLayout.CBCL),
        (Instrument.MISEQ, "%y%m%d", "RTAComplete.txt", BasecallLayout.BCL_PER_TILE),
    ],
)
def test_published_facts(instrument: Instrument, date_format: str, marker: str, layout: BasecallLayout) -> None:
    assert instrument.date_format == date_format
    assert instrument.completion_marker == marker
    assert instrument.basecalls is layout


@pytest.mark.parametrize(
    ("name", "instrument"),
    [
        # real run folders: the reference data (tests/reference/illumina) and public ones
        ("131022_M00630_0101_000000000-A5Y02", Instrument.MISEQ),
        ("140211_M00612_0148_000000000-A7M8N", Instrument.MISEQ),
        ("160404_NS500318_0141_AHW37NBGXX", Instrument.NEXTSEQ500),
        ("240802_A01934_0156_AHJF77DRX5", Instrument.NOVASEQ6000),
        ("190715_MN00302_0284_A000H2VKFF", Instrument.MINISEQ),
        ("170531_D00410_0425_AHKL7LBCXY", Instrument.HISEQ2500),
        ("190115_ST-E00269_0332_AHWNK2CCXY", Instrument.HISEQX),
        ("20251125_LH00123_0001_A22ABCDEF3", Instrument.NOVASEQX),
    ],
)
def test_run_folder_names_identify_one_behaviour(name: str, instrument: Instrument) -> None:
    found = instruments_for_run_folder(name)
    assert instrument in found
    assert instrument_of_run_folder(name) is not None
    assert instrument_of_run_folder(name).completion_marker == instrument.completion_marker  # type: ignore[union-attr]


def test_no_name_matches_instruments_that_behave_differently() -> None:
    # GIVEN every example name / THEN the instruments it matches all share date format, layout and markers
    for spec in REGISTRY.values():
        matches = instruments_for_run_folder(spec.example)
        assert len({(REGISTRY[m].date_format, REGISTRY[m].basecalls, REGISTRY[m].markers) for m in matches}) == 1


def test_default_paths_are_the_reference_ones_tagged() -> None:
    paths = parse_sequencer_paths(DEFAULT_SEQUENCER_PATHS)
    assert [(p.path, p.instrument) for p in paths] == [
        ("/sequencers/incoming/iseq", Instrument.ISEQ100),
        ("/sequencers/incoming/nextseq", Instrument.NEXTSEQ500),
        ("/sequencers/incoming/miseq", Instrument.MISEQ),
        ("/sequencers/incoming/nextseq2000", Instrument.NEXTSEQ2000),
    ]
    assert paths[0].date_format == "%Y%m%d"
    assert paths[1].date_format == "%y%m%d"


@pytest.mark.parametrize(
    ("value", "instrument"),
    [
        ("/nas/x=novaseqx", Instrument.NOVASEQX),
        ("/nas/x=NovaSeq6000", Instrument.NOVASEQ6000),
        ("/nas/x=hiseq4000", Instrument.HISEQ4000),
        ("/nas/x=miniseq", Instrument.MINISEQ),
        # untagged folders whose name is exactly one instrument still work
        ("/sequencers/incoming/miseq", Instrument.MISEQ),
        ("/sequencers/incoming/iseq", Instrument.ISEQ100),
        ("/sequencers/incoming/miniseq", Instrument.MINISEQ),
        ("/sequencers/incoming/NovaSeq_6000", Instrument.NOVASEQ6000),
        ("/sequencers/incoming/hiseq-4000", Instrument.HISEQ4000),
    ],
)
def test_tags_and_exact_folder_names(value: str, instrument: Instrument) -> None:
    (path,) = parse_sequencer_paths(value)
    assert path.instrument is instrument


@pytest.mark.parametrize(
    ("value", "names"),
    [
        # the substring traps of the past: 'iseq' inside 'miniseq', 'hiseq'; family names that hide a choice
        ("/sequencers/incoming/nextseq", ("nextseq500", "nextseq550", "nextseq1000", "nextseq2000")),
        ("/sequencers/incoming/novaseq", ("novaseq6000", "novaseqx")),
        ("/sequencers/incoming/hiseq", ("hiseq2500", "hiseq4000", "hiseqx")),
        ("/sequencers/incoming/miniseq-old", ()),
        ("/sequencers/incoming/lab-miseq2", ()),
        ("/data/run_output", ()),
    ],
)
def test_ambiguous_or_unknown_paths_stop_with_the_path_and_the_tags(value: str, names: tuple[str, ...]) -> None:
    with pytest.raises(UnknownInstrumentError) as caught:
        parse_sequencer_paths(f"/sequencers/incoming/miseq,{value}")
    message = str(caught.value)
    assert "sequencer path #2" in message
    assert repr(value) in message
    assert f"'{value}=<instrument>'" in message
    for name in names:
        assert name in message
    # every tag is offered
    for instrument in Instrument:
        assert instrument.value in message


def test_a_service_refuses_to_start_on_an_ambiguous_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/sequencers/incoming/hiseq")
    with pytest.raises(ValidationError, match="hiseq2500"):
        ServiceSettings()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/nas/x=hiseq", "unknown instrument"),
        ("/nas/x=", "empty instrument tag"),
        ("relative/x", "absolute"),
        ("", "no sequencer"),
        ("/nas/a=miseq,/nas/a/=iseq100", "also path #1"),
    ],
)
def test_bad_paths_are_named(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sequencer_paths(value)


def test_run_of() -> None:
    roots = parse_sequencer_paths("/s/miseq")
    assert run_of("/s/miseq/R1/Data/x.bcl", roots) == (roots[0], "R1")
    assert run_of("/s/miseq-old/R1", roots) is None


def test_extra_roots_are_shared_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEQFERRY_SEQUENCER_PATHS", "/seq/miseq=miseq")
    monkeypatch.setenv("SEQFERRY_ADHOC_EXTRA_ROOTS", " /archive/restore/ ,/seq/miseq,/other")
    settings = ServiceSettings()
    assert settings.extra_roots == ["/archive/restore", "/seq/miseq", "/other"]
    assert settings.request_roots == ["/seq/miseq", "/archive/restore", "/other"]
    for bad, needle in (("/", "whole NAS"), ("/a/b*", "not a pattern"), ("rel", "absolute")):
        with pytest.raises(ValidationError, match=needle):
            ServiceSettings(adhoc_extra_roots=bad)


def test_prod_refuses_dev_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEQFERRY_API_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="SEQFERRY_API_TOKEN"):
        ServiceSettings(environment="prod")
    assert ServiceSettings(environment="prod", api_token="x" * 32).environment == "prod"


def test_endpoint_from_standard_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("SEQFERRY_PREFIX", "lab1")
    settings = ServiceSettings()
    assert settings.aws_endpoint_url == "http://127.0.0.1:4566"
    assert settings.names.bucket == "lab1-runs"
    assert settings.names.executor_queue.dlq_name == "lab1-executor-dlq"


def test_datasync_alone_can_use_its_own_endpoint() -> None:
    # GIVEN an emulator for every AWS API and a separate DataSync endpoint (a VPC endpoint, a stand-in)
    settings = ServiceSettings(aws_endpoint_url="http://127.0.0.1:4566", datasync_endpoint_url="http://127.0.0.1:9")

    # THEN only DataSync clients go there
    assert client_kwargs(settings, "datasync")["endpoint_url"] == "http://127.0.0.1:9"
    assert client_kwargs(settings, "s3")["endpoint_url"] == "http://127.0.0.1:4566"
    assert "endpoint_url" not in client_kwargs(ServiceSettings(aws_endpoint_url=None), "datasync")


def test_the_readme_instrument_table_is_the_registry() -> None:
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Instruments", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells
    assert set(rows) == {i.value for i in Instrument}
    for instrument, spec in REGISTRY.items():
        _, label, pattern, date_format, layout, markers = rows[instrument.value]
        assert (label, pattern.strip("`"), date_format.strip("`"), layout) == (
            spec.label,
            spec.folder_pattern.pattern,
            spec.date_format,
            spec.basecalls.value,
        )
        assert tuple(m.strip() for m in markers.split(",")) == spec.markers
