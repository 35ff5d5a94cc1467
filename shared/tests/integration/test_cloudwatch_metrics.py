"""Service metrics reach CloudWatch (on the moto server) with the names and dimensions the dashboard reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from seqferry_shared.aws import sync_client
from seqferry_shared.runtime import cloudwatch_readers
from seqferry_shared.settings import ServiceSettings
from seqferry_shared.telemetry import setup_telemetry

pytestmark = pytest.mark.integration


def test_counters_and_histograms_are_pushed_as_deltas_and_statistic_sets(moto_server: Any, resource_prefix: str):
    # GIVEN a service with CloudWatch metrics turned on
    settings = ServiceSettings(prefix=resource_prefix, environment="test", cloudwatch_metrics=True)
    telemetry = setup_telemetry("notifier", set_global=False, readers=cloudwatch_readers(settings, "notifier"))
    meter = telemetry.meter
    delivered = meter.create_counter("seqferry_test_runs_delivered")
    latency = meter.create_histogram("seqferry_test_latency", unit="s")
    # WHEN it counts and measures, and its readers export (twice: deltas, not running totals)
    delivered.add(2, {"instrument": "miseq"})
    latency.record(30.0, {"instrument": "miseq"})
    latency.record(90.0, {"instrument": "miseq"})
    telemetry.meter_provider.force_flush()
    delivered.add(1, {"instrument": "miseq"})
    telemetry.meter_provider.force_flush()
    telemetry.shutdown()

    # THEN CloudWatch has them in the prefix's namespace, with a Service dimension and the attributes
    cloudwatch = sync_client("cloudwatch", settings)
    listed = cloudwatch.list_metrics(Namespace=resource_prefix)["Metrics"]
    found = {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in listed}
    dims = (("Service", "notifier"), ("instrument", "miseq"))
    assert ("seqferry_test_runs_delivered", dims) in found
    assert ("seqferry_test_latency", dims) in found

    def statistic(name: str, stat: str) -> float:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace=resource_prefix,
            MetricName=name,
            Dimensions=[{"Name": k, "Value": v} for k, v in dims],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=10),
            Period=3600,
            Statistics=[stat],
        )["Datapoints"]
        return sum(p[stat] for p in points)

    assert statistic("seqferry_test_runs_delivered", "Sum") == 3
    assert statistic("seqferry_test_latency", "SampleCount") == 2
    assert statistic("seqferry_test_latency", "Sum") == 120
