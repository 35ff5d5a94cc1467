"""Refused settings name the variable and the reason, never the value: the API token and the webhook URL (a Slack
incoming webhook's URL is its credential) are secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from seqferry_notifier.settings import NotifierSettings

TOKEN = "tok-9f8e7d6c5b"  # too short for prod
HOOK = "http://hooks.slack.example/services/T0000/B0000/XyZsecretPart42"


def test_a_refused_webhook_scheme_does_not_print_the_url_or_the_token() -> None:
    # GIVEN prod settings with a plain-http webhook and an acceptable token
    with pytest.raises(ValidationError) as info:
        NotifierSettings(environment="prod", api_token="x" * 20 + "Secret77", webhook_url=HOOK)
    # THEN the message says what is wrong and shows neither secret
    message = str(info.value)
    assert "must be https" in message
    assert "XyZsecretPart42" not in message
    assert "Secret77" not in message


def test_a_refused_token_does_not_print_itself() -> None:
    with pytest.raises(ValidationError) as info:
        NotifierSettings(environment="prod", api_token=TOKEN, webhook_url=HOOK.replace("http:", "https:"))
    message = str(info.value)
    assert "at least 16 characters" in message
    assert TOKEN not in message
    assert "XyZsecretPart42" not in message


def test_a_webhook_that_is_not_a_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as info:
        NotifierSettings(environment="test", webhook_url="ftp://XyZsecretPart42")
    message = str(info.value)
    assert "webhook_url" in message
    assert "not an http(s) URL" in message
    assert "XyZsecretPart42" not in message


def test_settings_never_show_their_secrets() -> None:
    settings = NotifierSettings(environment="test", api_token="Secret77" * 3, webhook_url=HOOK)
    assert settings.webhook == HOOK
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "XyZsecretPart42" not in shown
        assert "Secret77" not in shown


def test_the_entry_point_refuses_bad_settings_without_printing_secrets() -> None:
    # GIVEN the notifier's entry point started with a refused combination of settings
    env = {
        **os.environ,
        "SEQFERRY_ENVIRONMENT": "prod",
        "SEQFERRY_API_TOKEN": "Secret77" * 3,
        "SEQFERRY_WEBHOOK_URL": HOOK,
    }
    result = subprocess.run(
        [sys.executable, "-m", "seqferry_notifier"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    # THEN it stops, naming what is wrong, and nothing it printed holds a secret
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "must be https" in output
    assert "XyZsecretPart42" not in output
    assert "Secret77" not in output
