import pytest
from pydantic import ValidationError

from seqferry_shared.aws import client_kwargs
from seqferry_shared.sequencers import DEFAULT_SEQUENCER_PATHS, Instrument, parse_sequencer_paths, run_of
from seqferry_shared.settings import ServiceSettings


def test_default_paths_are_the_reference_ones() -> None:
    paths = parse_sequencer_paths(DEFAULT_SEQUENCER_PATHS)
    assert [(p.path, p.instrument) for p in paths] == [
        ("/sequencers/incoming/iseq", Instrument.ISEQ100),
        ("/sequencers/incoming/nextseq", Instrument.NEXTSEQ500),
        ("/sequencers/incoming/miseq", Instrument.MISEQ),
        ("/sequencers/incoming/nextseq2000", Instrument.NEXTSEQ2000),
    ]
    assert paths[0].date_format == "%Y%m%d"
    assert paths[1].date_format == "%y%m%d"


def test_explicit_instrument_tag() -> None:
    (path,) = parse_sequencer_paths("/nas/x=novaseqx")
    assert path.instrument is Instrument.NOVASEQX
    assert path.date_format == "%Y%m%d"


@pytest.mark.parametrize(
    ("value", "message"), [("/nas/x=hiseq", "unknown instrument"), ("relative/x", "absolute"), ("", "no sequencer")]
)
def test_bad_paths_are_named(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_sequencer_paths(value)


def test_run_of() -> None:
    roots = parse_sequencer_paths("/s/miseq")
    assert run_of("/s/miseq/R1/Data/x.bcl", roots) == (roots[0], "R1")
    assert run_of("/s/miseq-old/R1", roots) is None


@pytest.mark.parametrize(
    ("instrument", "name"),
    [
        (Instrument.MISEQ, "131022_M00630_0101_000000000-A5Y02"),
        (Instrument.NEXTSEQ500, "160404_NS500318_0141_AHW37NBGXX"),
        (Instrument.NOVASEQ6000, "240802_A01934_0156_AHJF77DRX5"),
    ],
)
def test_reference_run_names_match(instrument: Instrument, name: str) -> None:
    assert instrument.run_folder_pattern.match(name)


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
