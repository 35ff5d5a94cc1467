"""Expose OpenTelemetry metrics in Prometheus text format from a per-process registry (no global state)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

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
    MetricExportResult,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

_CUMULATIVE = {
    Counter: AggregationTemporality.CUMULATIVE,
    UpDownCounter: AggregationTemporality.CUMULATIVE,
    Histogram: AggregationTemporality.CUMULATIVE,
    ObservableCounter: AggregationTemporality.CUMULATIVE,
    ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
    ObservableGauge: AggregationTemporality.CUMULATIVE,
}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def _name(raw: str) -> str:
    return _INVALID.sub("_", raw)


def _labels(attributes: object) -> dict[str, str]:
    items = dict(attributes or {})  # type: ignore[call-overload]
    return {_name(str(k)): str(v) for k, v in items.items()}


class PrometheusBridge(MetricReader):
    """A pull reader: each Prometheus scrape collects the SDK's current metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(preferred_temporality=_CUMULATIVE)  # type: ignore[arg-type]
        self._data: MetricsData | None = None
        registry.register(_Collector(self))

    def _receive_metrics(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: object,
    ) -> None:
        self._data = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        return None

    def snapshot(self) -> MetricsData | None:
        self.collect()
        return self._data

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def export_result(self) -> MetricExportResult:
        return MetricExportResult.SUCCESS


class _Collector:
    def __init__(self, reader: PrometheusBridge) -> None:
        self._reader = reader

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        data = self._reader.snapshot()
        if data is None:
            return
        for resource_metrics in data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    yield from _convert(metric.name, metric.description or "", metric.data)


def _convert(raw_name: str, doc: str, data: object) -> Iterator[Metric]:
    name = _name(raw_name)
    if isinstance(data, Sum) and data.is_monotonic:
        family: Metric = CounterMetricFamily(name, doc, labels=None)
        for point in data.data_points:
            assert isinstance(point, NumberDataPoint)
            labels = _labels(point.attributes)
            family.add_sample(name + "_total", labels, float(point.value))
        yield family
    elif isinstance(data, Sum | Gauge):
        family = GaugeMetricFamily(name, doc)
        for point in data.data_points:
            assert isinstance(point, NumberDataPoint)
            family.add_sample(name, _labels(point.attributes), float(point.value))
        yield family
    elif isinstance(data, HistogramData):
        family = HistogramMetricFamily(name, doc)
        for hpoint in data.data_points:
            assert isinstance(hpoint, HistogramDataPoint)
            labels = _labels(hpoint.attributes)
            cumulative = 0
            for bound, count in zip(hpoint.explicit_bounds, hpoint.bucket_counts, strict=False):
                cumulative += count
                family.add_sample(name + "_bucket", {**labels, "le": repr(float(bound))}, cumulative)
            family.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, hpoint.count)
            family.add_sample(name + "_count", labels, hpoint.count)
            family.add_sample(name + "_sum", labels, hpoint.sum)
        yield family
