"""Notifications reach SNS and a webhook, with retries; messages carry ids and counts only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from seqferry_notifier.settings import NotifierSettings
from seqferry_shared.aws import sync_client
from seqferry_shared.events.models import ErrorInfo, TransferState
from seqferry_shared.state.kinds import LISTING_INDEX, LISTING_PK, Listing

pytestmark = pytest.mark.integration


async def test_execution_failure_reaches_sns_and_webhook_after_retries(
    stack, notifier_settings, start_notifier, wait_for, executor_event, hook
) -> None:
    # GIVEN a webhook that fails twice before it accepts
    hook.failures = 2
    settings = notifier_settings(webhook_url=hook.url, webhook_retries=3, webhook_backoff_s=0.05)
    async with start_notifier(settings):
        # WHEN an execution fails
        error = ErrorInfo(code="VerificationFailed", message="/sequencers/incoming/miseq/R/SAMPLE_X.bam mismatch")
        stack.publish(executor_event("local-w", TransferState.ERROR, files=4, error=error))

        # THEN the webhook got the Slack-style JSON on the third try
        await wait_for(lambda: _at_least(hook.calls, 3), what="three webhook calls")
        payload = hook.calls[-1]
        assert payload == hook.calls[0]
        assert "Transfer execution local-w (local) ended in ERROR (VerificationFailed)" in payload["text"]
        assert payload["seqferry"]["type"] == "execution_failed"
        assert payload["seqferry"]["execution_id"] == "local-w"
        assert payload["seqferry"]["files_transferred"] == 4
        # AND SNS has the subject and JSON body; neither channel carries the file name
        notes = await wait_for(lambda: _drained(stack), what="SNS message")
        assert notes[0]["Subject"] == "seqferry: transfer execution local-w failed (VerificationFailed)"
        assert json.loads(notes[0]["Message"])["error_code"] == "VerificationFailed"
        assert "SAMPLE_X" not in json.dumps(hook.calls) + json.dumps(notes)


async def test_webhook_down_longer_than_its_retries_is_delivered_later(
    stack, notifier_settings, start_notifier, wait_for, executor_event, hook
) -> None:
    # GIVEN a webhook down for longer than one delivery's retries
    hook.failures = 3
    settings = notifier_settings(webhook_url=hook.url, webhook_retries=1, webhook_backoff_s=0.05)
    async with start_notifier(settings):
        # WHEN an execution fails
        stack.publish(executor_event("local-d", TransferState.ERROR, error=ErrorInfo(code="Boom", message="")))
        # THEN the outbox retries the webhook later (and only the webhook: SNS got exactly one message)
        await wait_for(lambda: _at_least(hook.calls, 4), what="webhook delivered by the sweeper")
        notes = await wait_for(lambda: _drained(stack), what="SNS message")
        assert len(notes) == 1


async def test_a_channel_slower_than_the_lease_is_sent_once(
    stack, notifier_settings, start_notifier, wait_for, executor_event, hook
) -> None:
    # GIVEN a webhook that takes 3 s to answer, an outbox lease of 1 s and a sweeper looking every 0.2 s
    hook.delay_s = 3.0
    settings = notifier_settings(
        webhook_url=hook.url, webhook_retries=0, webhook_timeout_s=10, notice_lease_s=1, sweep_interval_s=0.2
    )
    async with start_notifier(settings):
        # WHEN an execution fails (one notice: SNS + webhook)
        stack.publish(executor_event("local-slow", TransferState.ERROR, error=ErrorInfo(code="Boom", message="")))
        await wait_for(lambda: _at_least(hook.calls, 1), what="the webhook called")
        # THEN the delivering worker keeps its lease: once the notice is done, each channel got it exactly once
        await wait_for(lambda: _no_pending_notices(stack), timeout=30, what="the notice delivered")
        notes = await wait_for(lambda: _drained(stack), what="SNS message")
        assert len(hook.calls) == 1
        assert len(notes) == 1


async def _no_pending_notices(stack) -> bool:
    ddb = sync_client("dynamodb", NotifierSettings(prefix=stack.prefix, environment="test"))
    response = ddb.query(
        TableName=stack.table,
        IndexName=LISTING_INDEX,
        KeyConditionExpression=f"{LISTING_PK} = :pk",
        ExpressionAttributeValues={":pk": {"S": Listing.NOTIFIER_NOTICES_PENDING.value}},
        Select="COUNT",
    )
    return response["Count"] == 0


async def _at_least(calls: list[Any], n: int) -> bool:
    return len(calls) >= n


async def _drained(stack) -> list[dict[str, Any]]:
    return stack.drain(stack.sns_queue_url)
