"""The notifier's work: fold execution observations, track runs, decide delivery, announce outcomes.

Handlers, the DataSync poller and the sweeper all call into :class:`NotifierService`; it owns no clients of its
own (they are passed in) and keeps no state between calls except a short dashboard cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from seqferry_notifier.datasync import DataSyncReader, ExecutionNotFoundError
from seqferry_notifier.domain import notifications
from seqferry_notifier.domain.datasync import describe_observation, event_observation
from seqferry_notifier.domain.discovery import Scope, run_folder, scopes, summary_from_objects
from seqferry_notifier.domain.executions import (
    ExecutionRecord,
    FoldResult,
    Observation,
    Source,
    execution_key,
    fold,
    note_describe,
    note_discovered,
)
from seqferry_notifier.domain.manifest import build_manifest
from seqferry_notifier.domain.notices import Notice, new_notice
from seqferry_notifier.domain.runinfo import MAX_RUNINFO_BYTES, RunInfo, RunInfoError, parse_run_info
from seqferry_notifier.domain.runs import (
    Completion,
    Incompletion,
    ObjectInfo,
    RunRecord,
    Verdict,
    candidate_blockers,
    decide,
    delivery_latency,
    identify_instrument,
    is_stalled,
    listing_due,
    manifest_key,
    mark_completed,
    mark_failed_execution,
    mark_incomplete,
    mark_stalled,
    new_run,
    observe_execution,
    record_listing,
    summary_problem,
)
from seqferry_notifier.domain.runstatus import (
    MAX_STATUS_BYTES,
    RunCompletion,
    RunStatusError,
    parse_run_completion,
)
from seqferry_notifier.metrics import Metrics
from seqferry_notifier.outbox import Outbox, new_owner
from seqferry_notifier.settings import NotifierSettings
from seqferry_notifier.storage import RunStorage
from seqferry_notifier.store import execution_record_key, iso, run_key
from seqferry_shared.events.aws import DataSyncStateChange
from seqferry_shared.events.models import (
    Meta,
    RunSummary,
    RunTransferCompleted,
    RunTransferFailed,
    TransferExecutionStateChanged,
    TransferState,
)
from seqferry_shared.sequencers import RUN_COMPLETION_STATUS, SequencerPath
from seqferry_shared.state.kinds import NOTIFIER_NOTICE, Key, Listing
from seqferry_shared.state.records import Filter, Records

log = logging.getLogger(__name__)

# Notices a run's partition holds (sort keys after NOTIFIER_NOTICE's ``notice#``).
COMPLETED = "completed"
INCOMPLETE = "failed#incomplete"
FailureReason = Literal["execution_error", "stalled", "sequencing_incomplete"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Stores:
    executions: Records[ExecutionRecord]
    runs: Records[RunRecord]


class NotifierService:
    def __init__(
        self,
        *,
        settings: NotifierSettings,
        stores: Stores,
        storage: RunStorage,
        outbox: Outbox,
        datasync: DataSyncReader,
        metrics: Metrics,
        sequencers: list[SequencerPath],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._executions = stores.executions
        self._runs = stores.runs
        self._storage = storage
        self._outbox = outbox
        self._datasync = datasync
        self._metrics = metrics
        self._sequencers = sequencers
        self._clock = clock
        # Several messages about one run arrive together; only one of them builds its manifest at a time.
        self._delivering: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # -- executions -----------------------------------------------------------------------------------------------
    async def on_execution_event(self, detail: TransferExecutionStateChanged) -> ExecutionRecord:
        """The executor's ``Transfer Execution State Changed``; run summaries that are not runs of this lab are
        dropped with the reason logged (the rest of the event still counts)."""
        summaries = {}
        for summary in detail.runs:
            problem = summary_problem(summary, self._sequencers)
            if problem is None:
                summaries[summary.run_id] = summary
            else:
                log.warning("execution %s: run summary refused: %s", detail.execution_id[:200], problem)
        observation = Observation(
            execution_id=detail.execution_id,
            at=detail.meta.occurred_at,
            source=Source.EXECUTOR,
            state=detail.state,
            backend=detail.backend,
            task=detail.task,
            counters=detail.counters,
            error=detail.error,
            problems=tuple(detail.problems),
            started_at=detail.started_at,
            trigger=detail.trigger,
            includes=tuple(detail.includes),
            run_ids=tuple(summaries),
            correlation_id=detail.meta.correlation_id,
        )
        return await self.observe(observation, summaries)

    async def on_datasync_event(self, event: DataSyncStateChange) -> ExecutionRecord:
        """DataSync's own state-change event: record it, then reconcile with DescribeTaskExecution."""
        record = await self.observe(event_observation(event, event.time or self._clock()), {})
        return await self.reconcile(record)

    async def reconcile(self, record: ExecutionRecord) -> ExecutionRecord:
        """DescribeTaskExecution for a DataSync execution and fold the answer in."""
        if record.arn is None:
            return record
        now = self._clock()
        try:
            response = await self._datasync.describe(record.arn)
        except ExecutionNotFoundError as exc:
            problem = str(exc)
        else:
            self._metrics.describes.add(1, {"outcome": "ok"})
            return await self.observe(describe_observation(response, now), {}, described_at=now)
        self._metrics.describes.add(1, {"outcome": "not_found"})
        log.warning("execution %s: DataSync does not know it (%s); no longer polled", record.execution_id, problem)
        stored, _ = await self._executions.mutate(
            execution_record_key(record.execution_id),
            lambda current: (note_describe(current or record, now, error=problem, not_found=True), None),
        )
        return stored or record

    async def observe(
        self, observation: Observation, summaries: dict[str, RunSummary], *, described_at: datetime | None = None
    ) -> ExecutionRecord:
        """Fold one observation into the execution's record, then into every run it touches."""
        self._metrics.observations.add(1, {"source": observation.source.value})
        key = execution_key(observation.execution_id)

        def change(current: ExecutionRecord | None) -> tuple[ExecutionRecord | None, FoldResult]:
            result = fold(current, observation)
            record = result.record
            if described_at is not None:
                record = note_describe(record, described_at, error=None, not_found=False)
            elif not result.changed:
                return None, result
            return record, result

        stored, result = await self._executions.mutate(execution_record_key(key), change)
        record = stored or result.record
        if result.state_changed or summaries:
            for run_id in dict.fromkeys([*record.run_ids, *summaries]):
                await self._observe_run(run_id, record, summaries.get(run_id), observation.at)
        if record.needs_run_discovery:
            record = await self._discover_runs(record)
        elif record.awaits_includes:
            record = await self.reconcile(record)
        if result.became_terminal == TransferState.ERROR:
            await self._announce_execution_failure(record)
        return record

    # -- runs -----------------------------------------------------------------------------------------------------
    async def _discover_runs(self, record: ExecutionRecord) -> ExecutionRecord:
        """Find the run folders a successful DataSync execution covered in the bucket, and track each one.

        Runs already delivered are skipped without listing them. A failure here fails the handler, so the message
        comes back and the lookup is tried again (the record says it has not been done).
        """
        until = record.finished_at or self._clock()
        found: dict[str, RunSummary] = {}
        for scope in scopes(record.includes, self._sequencers):
            for run_id in await self._runs_in(scope):
                if run_id in found:
                    continue
                known = await self._runs.load(run_key(run_id))
                if known is not None and known.record.completion is not None:
                    continue
                objects = await self._storage.list_run(f"{scope.root_key}{run_id}/")
                if objects:
                    found[run_id] = summary_from_objects(scope.root, run_id, objects, until=until)
        log.info(
            "execution %s: %d run folder(s) found in s3://%s for its include patterns",
            record.execution_id,
            len(found),
            self._storage.bucket,
        )
        for run_id, summary in found.items():
            await self._observe_run(run_id, record, summary, until)
        now = self._clock()
        stored, _ = await self._executions.mutate(
            execution_record_key(record.execution_id),
            lambda current: (note_discovered(current or record, list(found), now), None),
        )
        return stored or record

    async def _runs_in(self, scope: Scope) -> list[str]:
        if scope.run_id is not None:
            return [scope.run_id]
        prefixes = await self._storage.folders(scope.list_prefix)
        return [name for name in (run_folder(scope, p) for p in prefixes) if name is not None]

    async def _observe_run(
        self, run_id: str, execution: ExecutionRecord, summary: RunSummary | None, at: datetime
    ) -> None:
        def change(current: RunRecord | None) -> tuple[RunRecord | None, None]:
            if current is None:
                if summary is None:
                    return None, None
                instrument = identify_instrument(summary.nas_path, summary.run_id, self._sequencers)
                current = new_run(summary, self._storage.bucket, instrument, at)
            updated = observe_execution(
                current,
                execution_id=execution.execution_id,
                state=execution.state,
                started_at=execution.started_at or execution.first_seen_at,
                at=at,
                summary=summary,
                correlation_id=execution.correlation_id,
            )
            return (None if updated == current else updated), None

        run, _ = await self._runs.mutate(run_key(run_id), change)
        if run is None:
            return
        if execution.state == TransferState.ERROR and run.completion is None:
            await self._announce_run_failure(run, execution)
        await self.evaluate_run(run)

    async def _read_run_info(self, run: RunRecord, keys: set[str]) -> tuple[RunInfo | None, str | None]:
        key = f"{run.s3_prefix}RunInfo.xml"
        if key not in keys:
            return None, None
        data = await self._storage.read(key, max_bytes=MAX_RUNINFO_BYTES)
        if data is None:
            return None, None
        try:
            return parse_run_info(data), None
        except RunInfoError as exc:
            return None, str(exc)

    async def _read_completion(self, run: RunRecord, keys: set[str]) -> RunCompletion | None:
        key = f"{run.s3_prefix}{RUN_COMPLETION_STATUS}"
        if key not in keys:
            return None
        data = await self._storage.read(key, max_bytes=MAX_STATUS_BYTES)
        if data is None:
            return None
        try:
            return parse_run_completion(data)
        except RunStatusError as exc:
            log.warning("run %s: %s; judged by its cycles instead", run.run_id, exc)
            return None

    async def evaluate_run(self, run: RunRecord) -> Verdict | None:
        """Apply the delivery rule; list S3 only when delivery is possible or the progress figures are due."""
        if run.completion is not None or run.incomplete is not None:
            return None
        now = self._clock()
        candidate = not candidate_blockers(run)
        if not candidate and not listing_due(run, now, timedelta(seconds=self._settings.listing_min_interval_s)):
            return None
        objects = await self._storage.list_run(run.s3_prefix)
        run_info, run_info_error, completion = None, None, None
        if candidate:
            keys = {o.key for o in objects}
            completion = await self._read_completion(run, keys)
            if self._settings.check_cycles:
                run_info, run_info_error = await self._read_run_info(run, keys)
        verdict = decide(
            run,
            objects,
            run_info,
            run_info_error=run_info_error,
            check_cycles=self._settings.check_cycles,
            completion=completion,
            quiet=now - run.last_progress_at >= timedelta(seconds=self._settings.incomplete_grace_s),
        )
        self._metrics.listings.add(1, {"verdict": "complete" if verdict.complete else "incomplete"})
        stored, _ = await self._runs.mutate(
            run_key(run.run_id),
            lambda current: (
                record_listing(current, verdict.files, verdict.bytes, list(verdict.blockers), now) if current else None,
                None,
            ),
        )
        if verdict.complete and stored is not None:
            await self._deliver_run(stored, verdict, objects)
        elif verdict.incomplete is not None and stored is not None:
            async with self._delivering[run.run_id]:
                await self._report_incomplete(stored, verdict, objects)
        elif candidate:
            log.info("run %s not delivered yet: %s", run.run_id, "; ".join(verdict.blockers))
        return verdict

    async def _deliver_run(self, run: RunRecord, verdict: Verdict, objects: list[ObjectInfo]) -> None:
        async with self._delivering[run.run_id]:
            await self._deliver_run_once(run, verdict, objects)

    async def _deliver_run_once(self, run: RunRecord, verdict: Verdict, objects: list[ObjectInfo]) -> None:
        key = NOTIFIER_NOTICE.child(run_key(run.run_id), COMPLETED)
        existing = await self._outbox.existing(key)
        if existing is not None:
            await self._mark_completed(run, existing)
            return
        now = self._clock()
        manifest = await self._manifest(run, verdict, objects, now)
        if manifest is None:
            return
        executions = [e.execution_id for e in sorted(run.executions.values(), key=lambda e: e.started_at)]
        detail = RunTransferCompleted(
            meta=Meta(correlation_id=run.correlation_ids[0] if run.correlation_ids else None),
            run_id=run.run_id,
            instrument=run.instrument.value if run.instrument else "unknown",
            nas_path=run.nas_path,
            s3_uri=run.s3_uri,
            files=verdict.files,
            bytes=verdict.bytes,
            completion_marker=verdict.marker,
            checksum_manifest=manifest,
            executions=executions,
        )
        notice = self._notice(key, notifications.run_completed(detail), detail, now)
        if await self._outbox.open(notice):
            instrument = {"instrument": detail.instrument}
            self._metrics.runs_completed.add(1, instrument)
            latency = delivery_latency(run, now)
            if latency is not None:
                self._metrics.delivery_latency.record(latency, instrument)
            log.info("run %s delivered: %d files, %d bytes", run.run_id, verdict.files, verdict.bytes)
            await self._mark_completed(run, notice)
            await self._outbox.deliver(notice)
        else:
            winner = await self._outbox.existing(key)
            if winner is not None:
                await self._mark_completed(run, winner)

    async def _manifest(self, run: RunRecord, verdict: Verdict, objects: list[ObjectInfo], now: datetime) -> str | None:
        """Write the run's checksum manifest; None when objects changed while it was built (decide again later)."""
        entries = await self._storage.manifest_entries([o.key for o in objects])
        listed = {o.key: o.size for o in objects}
        if any(listed.get(e.key) != e.size for e in entries):
            log.info("run %s: objects changed while the manifest was built; deciding again later", run.run_id)
            return None
        key = manifest_key(run, self._settings.manifest_name)
        executions = [e.execution_id for e in sorted(run.executions.values(), key=lambda e: e.started_at)]
        body = build_manifest(run, entries, marker=verdict.marker, generated_at=now, executions=executions)
        await self._storage.put_json(key, body)
        return f"s3://{self._storage.bucket}/{key}"

    async def _report_incomplete(self, run: RunRecord, verdict: Verdict, objects: list[ObjectInfo]) -> None:
        """The instrument ended the run early: say so once, with a manifest of what was delivered."""
        assert verdict.incomplete is not None
        key = NOTIFIER_NOTICE.child(run_key(run.run_id), INCOMPLETE)
        notice = await self._outbox.existing(key)
        if notice is None:
            now = self._clock()
            manifest = await self._manifest(run, verdict, objects, now)
            if manifest is None:
                return
            executions = [e.execution_id for e in sorted(run.executions.values(), key=lambda e: e.started_at)]
            detail = self._failed_detail(run, "sequencing_incomplete").model_copy(
                update={
                    "sequencing": verdict.incomplete,
                    "files": verdict.files,
                    "bytes": verdict.bytes,
                    "checksum_manifest": manifest,
                    "executions": executions,
                }
            )
            candidate = self._notice(key, notifications.run_failed(detail), detail, now)
            if await self._outbox.open(candidate):
                self._metrics.runs_failed.add(1, {"reason": "sequencing_incomplete", "instrument": detail.instrument})
                log.warning(
                    "run %s ended early (%s): %d files delivered", run.run_id, verdict.incomplete.status, verdict.files
                )
                await self._mark_incomplete(run, candidate)
                await self._outbox.deliver(candidate)
                return
            notice = await self._outbox.existing(key)
            if notice is None:
                return
        await self._mark_incomplete(run, notice)

    async def _mark_incomplete(self, run: RunRecord, notice: Notice) -> None:
        event = RunTransferFailed.model_validate(notice.event)
        if event.sequencing is None:
            return
        incompletion = Incompletion(
            at=notice.created_at,
            outcome=event.sequencing,
            files=event.files,
            bytes=event.bytes,
            manifest_uri=event.checksum_manifest or "",
            event_id=str(event.meta.event_id),
        )
        await self._runs.mutate(
            run_key(run.run_id),
            lambda current: (mark_incomplete(current, incompletion) if current else None, None),
        )

    async def _mark_completed(self, run: RunRecord, notice: Notice) -> None:
        event = RunTransferCompleted.model_validate(notice.event)
        completion = Completion(
            at=notice.created_at,
            files=event.files,
            bytes=event.bytes,
            marker=event.completion_marker,
            manifest_uri=event.checksum_manifest,
            event_id=str(event.meta.event_id),
        )
        await self._runs.mutate(
            run_key(run.run_id),
            lambda current: (mark_completed(current, completion) if current and not current.completion else None, None),
        )

    def _notice(
        self,
        key: Key,
        notification: notifications.Notification,
        detail: RunTransferCompleted | RunTransferFailed | None,
        now: datetime,
    ) -> Notice:
        return new_notice(
            pk=key.pk,
            sk=key.sk,
            notification=notification,
            now=now,
            lease=self._outbox.lease,
            webhook=self._outbox.webhook_enabled,
            owner=new_owner(),
            event_type=detail.DETAIL_TYPE if detail else None,
            event=detail.model_dump(mode="json") if detail else None,
        )

    def _failed_detail(
        self, run: RunRecord, reason: FailureReason, execution: ExecutionRecord | None = None
    ) -> RunTransferFailed:
        executions = [execution.execution_id] if execution else list(run.executions)[-5:]
        return RunTransferFailed(
            meta=Meta(correlation_id=run.correlation_ids[0] if run.correlation_ids else None),
            run_id=run.run_id,
            instrument=run.instrument.value if run.instrument else "unknown",
            nas_path=run.nas_path,
            s3_uri=run.s3_uri,
            reason=reason,
            error=execution.error if execution else None,
            files=run.s3_files or 0,
            bytes=run.s3_bytes or 0,
            executions=executions,
        )

    async def _announce_run_failure(self, run: RunRecord, execution: ExecutionRecord) -> None:
        now = self._clock()
        detail = self._failed_detail(run, "execution_error", execution)
        key = NOTIFIER_NOTICE.child(run_key(run.run_id), f"failed#execution#{execution.execution_id}")
        notice = self._notice(key, notifications.run_failed(detail), detail, now)
        if not await self._outbox.open(notice):
            return
        self._metrics.runs_failed.add(1, {"reason": "execution_error", "instrument": detail.instrument})
        log.warning("run %s: execution %s failed", run.run_id, execution.execution_id)
        await self._runs.mutate(
            run_key(run.run_id),
            lambda current: (mark_failed_execution(current, execution.execution_id, now) if current else None, None),
        )
        await self._outbox.deliver(notice)

    async def _announce_execution_failure(self, record: ExecutionRecord) -> None:
        notice = self._notice(
            NOTIFIER_NOTICE.child(execution_record_key(record.execution_id), "failed"),
            notifications.execution_failed(record),
            None,
            self._clock(),
        )
        if await self._outbox.open(notice):
            log.warning("execution %s failed: %s", record.execution_id, record.error.code if record.error else "?")
            await self._outbox.deliver(notice)

    async def _announce_stall(self, run: RunRecord, now: datetime, deadline: timedelta) -> None:
        episode = iso(run.last_progress_at)

        def change(current: RunRecord | None) -> tuple[RunRecord | None, bool]:
            if current is None or not is_stalled(current, now, deadline):
                return None, False
            return mark_stalled(current, now), True

        stalled, marked = await self._runs.mutate(run_key(run.run_id), change)
        if not marked or stalled is None:
            return
        detail = self._failed_detail(stalled, "stalled")
        key = NOTIFIER_NOTICE.child(run_key(run.run_id), f"failed#stalled#{episode}")
        notice = self._notice(key, notifications.run_failed(detail), detail, now)
        if await self._outbox.open(notice):
            self._metrics.runs_failed.add(1, {"reason": "stalled", "instrument": detail.instrument})
            log.warning("run %s stalled: no progress since %s", run.run_id, episode)
            await self._outbox.deliver(notice)

    # -- background work ------------------------------------------------------------------------------------------
    async def poll_datasync(self) -> int:
        """Describe DataSync executions left non-terminal (their SUCCESS/ERROR event may never come)."""
        now = self._clock()
        cutoff = now - timedelta(seconds=self._settings.datasync_poll_interval_s)
        oldest = now - timedelta(hours=self._settings.datasync_poll_max_age_h)
        due = await self._executions.query(
            Listing.NOTIFIER_EXECUTIONS,
            lower=iso(oldest),
            limit=200,
            where=Filter(
                "pollable = :yes AND polled_at < :cutoff",
                {},
                {":yes": {"BOOL": True}, ":cutoff": {"N": f"{cutoff.timestamp():.3f}"}},
            ),
        )
        for record in due:
            await self.reconcile(record)
        return len(due)

    async def sweep(self) -> None:
        """Report stalled runs and retry undelivered notices."""
        now = self._clock()
        deadline = timedelta(seconds=self._settings.stall_deadline_s)
        stale = await self._runs.query(
            Listing.NOTIFIER_RUNS,
            upper=iso(now - deadline),
            limit=200,
            where=Filter("delivered = :no AND stalled = :no", {}, {":no": {"BOOL": False}}),
        )
        for run in stale:
            if is_stalled(run, now, deadline):
                await self._announce_stall(run, now, deadline)
        await self._recheck(now, deadline)
        await self._outbox.retry_due()

    async def _recheck(self, now: datetime, deadline: timedelta) -> None:
        """Decide again for runs whose executions are done but whose S3 side did not match when they reported."""
        recheck = timedelta(seconds=self._settings.recheck_interval_s)
        active = await self._runs.query(
            Listing.NOTIFIER_RUNS,
            lower=iso(now - deadline),
            limit=200,
            where=Filter("delivered = :no AND stalled = :no", {}, {":no": {"BOOL": False}}),
        )
        for run in active:
            if not candidate_blockers(run) and listing_due(run, now, recheck):
                await self.evaluate_run(run)

    # -- reads for people -----------------------------------------------------------------------------------------
    async def execution(self, execution_id: str) -> ExecutionRecord | None:
        found = await self._executions.load(execution_record_key(execution_key(execution_id)))
        return found.record if found else None

    async def executions(self, *, limit: int, since: datetime | None = None) -> list[ExecutionRecord]:
        return await self._executions.query(
            Listing.NOTIFIER_EXECUTIONS, lower=iso(since) if since else None, limit=limit
        )

    async def run(self, run_id: str) -> RunRecord | None:
        found = await self._runs.load(run_key(run_id))
        return found.record if found else None

    async def runs(self, *, limit: int) -> list[RunRecord]:
        return await self._runs.query(Listing.NOTIFIER_RUNS, limit=limit)
