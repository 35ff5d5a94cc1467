"""The notifier's own counters (exported at /metrics with the shared runtime's)."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter


@dataclass(frozen=True, slots=True)
class Metrics:
    observations: Counter
    describes: Counter
    listings: Counter
    runs_completed: Counter
    runs_failed: Counter
    notifications: Counter
    delivery_latency: Histogram

    @classmethod
    def create(cls, meter: Meter) -> Metrics:
        return cls(
            observations=meter.create_counter(
                "seqferry_notifier_execution_observations", description="Execution observations, by source"
            ),
            describes=meter.create_counter(
                "seqferry_notifier_datasync_describes", description="DescribeTaskExecution calls, by outcome"
            ),
            listings=meter.create_counter(
                "seqferry_notifier_run_listings", description="S3 listings of run prefixes, by verdict"
            ),
            runs_completed=meter.create_counter(
                "seqferry_notifier_runs_completed", description="Run Transfer Completed events emitted, by instrument"
            ),
            runs_failed=meter.create_counter(
                "seqferry_notifier_runs_failed",
                description="Run Transfer Failed events emitted, by reason and instrument",
            ),
            notifications=meter.create_counter(
                "seqferry_notifier_notifications", description="Notification sends, by channel, kind and outcome"
            ),
            delivery_latency=meter.create_histogram(
                "seqferry_notifier_delivery_latency",
                unit="s",
                description="From the first scan that saw a run's completion marker to Run Transfer Completed, by "
                "instrument",
            ),
        )
