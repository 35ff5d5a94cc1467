"""OpenTelemetry setup (one call per process) and W3C trace-context propagation across bus and queue hops.

Exporters follow the standard ``OTEL_*`` variables: spans go over OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (and ``OTEL_TRACES_EXPORTER`` is not ``none``); metrics are
always readable at ``/metrics`` in Prometheus text format and also pushed over OTLP when an endpoint is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

from seqferry_shared.prometheus import PrometheusBridge

_PROPAGATOR = TraceContextTextMapPropagator()


def _otlp_enabled(signal: str) -> bool:
    if os.environ.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    )


@dataclass
class Telemetry:
    service_name: str
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer(f"seqferry.{self.service_name}")

    @property
    def meter(self) -> metrics.Meter:
        return self.meter_provider.get_meter(f"seqferry.{self.service_name}")

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def setup_telemetry(service_name: str, *, set_global: bool = True, readers: Sequence[MetricReader] = ()) -> Telemetry:
    """Build tracer and meter providers for this process; call once, at start. ``readers`` are extra metric
    readers (the CloudWatch exporter)."""
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", f"seqferry-{service_name}")})
    tracer_provider = TracerProvider(resource=resource)
    if _otlp_enabled("traces"):
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=500))
    registry = CollectorRegistry(auto_describe=True)
    all_readers: list[MetricReader] = [PrometheusBridge(registry), *readers]
    if _otlp_enabled("metrics"):
        all_readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    meter_provider = MeterProvider(resource=resource, metric_readers=all_readers)
    if set_global:
        # Libraries (and the propagator) look up the global provider; a second setup in one process (tests)
        # keeps the first global and uses its own providers explicitly.
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
    return Telemetry(service_name, tracer_provider, meter_provider, registry)


def trace_headers(ctx: Context | None = None) -> dict[str, str]:
    """W3C ``traceparent``/``tracestate`` of the current (or given) context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return carrier


def extract(carrier: Mapping[str, str | None]) -> Context:
    clean = {k: v for k, v in carrier.items() if v}
    return _PROPAGATOR.extract(clean)


def attach(ctx: Context) -> object:
    return otel_context.attach(ctx)


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]
