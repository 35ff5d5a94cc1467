"""Settings: options over environment over the config file's profile section over [default] over dev defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqferry_cli.errors import InvalidInputError
from seqferry_cli.settings import CLI_SOURCE, load_settings

CONFIG = """
[default]
prefix = "labdefault"
executor_url = "https://executor.lab.example"
output = "json"

[profiles.prod]
prefix = "labprod"
sequencer_paths = "/nas/novaseq=novaseq6000"
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "SEQFERRY_PREFIX",
        "SEQFERRY_OUTPUT",
        "SEQFERRY_EXECUTOR_URL",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "SEQFERRY_SEQUENCER_PATHS",
        "SEQFERRY_CONFIG",
        "SEQFERRY_CLI_SOURCE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


def test_defaults_are_the_dev_stack(clean_env: Path):
    settings = load_settings({})
    assert settings.prefix == "seqferry"
    assert settings.url("executor") == "http://127.0.0.1:8082"
    assert settings.url("notifier") == "http://127.0.0.1:8080"
    assert settings.source == CLI_SOURCE
    assert settings.region is None  # the AWS profile decides
    assert settings.roots[-1] == "/adhoc"


def test_precedence(clean_env: Path, monkeypatch: pytest.MonkeyPatch):
    # config file only: [default]
    assert load_settings({}, config_file=clean_env).prefix == "labdefault"
    # the profile's section over [default]; [default] still fills the rest
    prod = load_settings({"aws_profile": "prod"}, config_file=clean_env)
    assert (prod.prefix, prod.output, prod.url("executor")) == ("labprod", "json", "https://executor.lab.example")
    assert prod.roots == ["/nas/novaseq", "/adhoc"]
    # the environment over the file (AWS_PROFILE selects the section too)
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("SEQFERRY_PREFIX", "fromenv")
    assert load_settings({}, config_file=clean_env).prefix == "fromenv"
    # options over everything
    assert load_settings({"prefix": "fromoption", "output": "table"}, config_file=clean_env).output == "table"
    # SEQFERRY_CONFIG names the file like --config
    monkeypatch.setenv("SEQFERRY_CONFIG", str(clean_env))
    assert load_settings({}).url("executor") == "https://executor.lab.example"


def test_region_is_passed_on_only_when_given(clean_env: Path, monkeypatch: pytest.MonkeyPatch):
    assert load_settings({"aws_region": "eu-west-1"}).region == "eu-west-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert load_settings({}).region == "eu-central-1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[default]\nprefx = 'x'\n", "unknown setting(s) prefx"),
        ("[default\n", "config file"),
        ("default = 3\n", "[default] must be a table"),
    ],
)
def test_a_bad_config_file_is_a_usage_error(clean_env: Path, text: str, message: str):
    clean_env.write_text(text)
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_settings({}, config_file=clean_env)


def test_invalid_values_name_the_setting(clean_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEQFERRY_CLI_SOURCE", "aws.s3")
    with pytest.raises(InvalidInputError) as caught:
        load_settings({"prefix": "Not A Prefix"})
    assert any(d.startswith("prefix:") for d in caught.value.details)
    assert any("aws." in d for d in caught.value.details)


def test_an_explicit_config_file_must_exist(clean_env: Path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_settings({}, config_file=clean_env.with_name("missing.toml"))
    assert load_settings({}).prefix == "seqferry"  # the default location may be absent
