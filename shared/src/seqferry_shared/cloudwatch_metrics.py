"""Push the services' OpenTelemetry metrics to CloudWatch (``PutMetricData``), for the CloudWatch dashboard.

Counters are exported as deltas (one value per export interval), histograms as statistic sets (count, sum,
minimum, maximum), gauges as they are. Every datum carries a ``Service`` dimension plus the data point's attributes
as dimensions, in the namespace ``<prefix>``; metric names are the instruments' names (``seqferry_...``). The
dashboard in ``deploy/terraform`` reads them with SEARCH expressions over those dimensions, and a test checks that
every metric a dashboard widget names is one the code emits.

Turned on with ``SEQFERRY_CLOUDWATCH_METRICS=true``; exporting runs in the SDK's reader thread, so it uses a plain
boto3 client. A failed export is logged and the interval's values are dropped: metrics never stop a service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData

log = logging.getLogger(__name__)

# PutMetricData accepts up to 1,000 metrics per call and 30 dimensions per metric.
BATCH = 500
MAX_DIMENSIONS = 30
SERVICE_DIMENSION = "Service"
_UNITS = {"s": "Seconds", "ms": "Milliseconds", "By": "Bytes", "1": "Count", "": "None"}
_DELTA = {
    Counter: AggregationTemporality.DELTA,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}


def _dimensions(service: str, attributes: object) -> list[dict[str, str]]:
    items = dict(attributes or {})  # type: ignore[call-overload]
    dims = [{"Name": SERVICE_DIMENSION, "Value": service}]
    for key, value in sorted(items.items())[: MAX_DIMENSIONS - 1]:
        text = str(value)[:1024]
        if text:
            dims.append({"Name": str(key)[:255], "Value": text})
    return dims


def _when(point: NumberDataPoint | HistogramDataPoint) -> datetime:
    return datetime.fromtimestamp(point.time_unix_nano / 1e9, UTC)


def metric_data(metrics: MetricsData, service: str) -> Iterator[dict[str, Any]]:
    """CloudWatch datums for one export (zero deltas and empty histograms are left out)."""
    for resource_metrics in metrics.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                unit = _UNITS.get(metric.unit or "", "None")
                data = metric.data
                if isinstance(data, HistogramData):
                    for point in data.data_points:
                        if point.count == 0:
                            continue
                        yield {
                            "MetricName": metric.name,
                            "Dimensions": _dimensions(service, point.attributes),
                            "Timestamp": _when(point),
                            "StatisticValues": {
                                "SampleCount": float(point.count),
                                "Sum": float(point.sum),
                                "Minimum": float(point.min),
                                "Maximum": float(point.max),
                            },
                            "Unit": unit,
                        }
                elif isinstance(data, Sum | Gauge):
                    delta = isinstance(data, Sum) and data.aggregation_temporality is AggregationTemporality.DELTA
                    for number in data.data_points:
                        if delta and number.value == 0:
                            continue
                        yield {
                            "MetricName": metric.name,
                            "Dimensions": _dimensions(service, number.attributes),
                            "Timestamp": _when(number),
                            "Value": float(number.value),
                            "Unit": "Count" if unit == "None" and isinstance(data, Sum) else unit,
                        }


class CloudWatchMetricExporter(MetricExporter):
    def __init__(self, client_factory: Callable[[], Any], namespace: str, service: str) -> None:
        super().__init__(preferred_temporality=_DELTA)  # type: ignore[arg-type]
        self._client_factory = client_factory
        self._client: Any = None
        self.namespace = namespace
        self.service = service

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        data = list(metric_data(metrics_data, self.service))
        try:
            if self._client is None:
                self._client = self._client_factory()
            for start in range(0, len(data), BATCH):
                self._client.put_metric_data(Namespace=self.namespace, MetricData=data[start : start + BATCH])
        except (ClientError, BotoCoreError) as exc:
            log.warning("CloudWatch metrics not exported (%d datums): %s", len(data), exc)
            return MetricExportResult.FAILURE
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._client = None
