"""Prometheus metrics in the text exposition format (0.0.4), without a client library.

Counters and histograms keyed by label values; gauges read on scrape. Label
values come only from regate's own vocabulary (actions, provider names,
status codes), never from request content or credentials.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


@dataclass
class Counter:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    values: dict[tuple[str, ...], float] = field(default_factory=dict)

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        self.values[label_values] = self.values.get(label_values, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [
            f"{self.name}{_labels(self.labels, k)} {v:g}" for k, v in sorted(self.values.items())
        ]
        return lines


@dataclass
class Histogram:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    series: dict[tuple[str, ...], list[float]] = field(
        default_factory=dict
    )  # counts..., sum, count

    def observe(self, value: float, *label_values: str) -> None:
        row = self.series.get(label_values)
        if row is None:
            row = self.series[label_values] = [0.0] * (len(self.buckets) + 2)
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.buckets):
            row[index] += 1
        row[-2] += value
        row[-1] += 1

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, row in sorted(self.series.items()):
            cumulative = 0.0
            for bound, count in zip(self.buckets, row, strict=False):
                cumulative += count
                le = f'le="{bound:g}"'
                lines.append(f"{self.name}_bucket{_labels(self.labels, key, le)} {cumulative:g}")
            inf = 'le="+Inf"'
            lines.append(f"{self.name}_bucket{_labels(self.labels, key, inf)} {row[-1]:g}")
            lines.append(f"{self.name}_sum{_labels(self.labels, key)} {row[-2]:.6f}")
            lines.append(f"{self.name}_count{_labels(self.labels, key)} {row[-1]:g}")
        return lines


@dataclass
class Gauge:
    name: str
    help: str
    read: Callable[[], float]
    labels: Callable[[], Mapping[str, str]] | None = None  # read on scrape, like the value

    def render(self) -> list[str]:
        pairs = self.labels() if self.labels is not None else {}
        sample = f"{self.name}{_labels(tuple(pairs), tuple(pairs.values()))} {self.read():g}"
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", sample]


@dataclass
class GaugeFamily:
    """A gauge with one sample per label values, all read on scrape."""

    name: str
    help: str
    labels: tuple[str, ...]
    read: Callable[[], Mapping[tuple[str, ...], float]]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        lines += [
            f"{self.name}{_labels(self.labels, k)} {v:g}" for k, v in sorted(self.read().items())
        ]
        return lines


class Metrics:
    """The gateway's metrics; ``render()`` is the body of ``GET /metrics``."""

    def __init__(self) -> None:
        self.requests = Counter(
            "regate_requests_total",
            "Requests by API, policy action, provider and HTTP status.",
            ("api", "action", "provider", "status"),
        )
        self.decision_seconds = Histogram(
            "regate_decision_seconds", "Policy decision latency (detect, schemas, Rego, enforce)."
        )
        self.upstream_seconds = Histogram(
            "regate_upstream_seconds",
            "Upstream provider latency to response headers.",
            ("provider",),
        )
        self.upstream_errors = Counter(
            "regate_upstream_errors_total",
            "Failed upstream attempts by provider and kind.",
            ("provider", "kind"),
        )
        self.policy_errors = Counter(
            "regate_policy_errors_total", "Decisions that failed closed (or open, when configured)."
        )
        self.retries = Counter(
            "regate_upstream_retries_total",
            "Retries of a route target, by provider and the failure retried.",
            ("provider", "reason"),
        )
        self.fallbacks = Counter(
            "regate_upstream_fallbacks_total",
            "Moves from one route target to the next, by provider left and tried.",
            ("from_provider", "to_provider"),
        )
        self.bundle_activations = Counter(
            "regate_bundle_activations_total",
            "Bundles activated from the bundle service or its cache.",
            values={(): 0.0},
        )
        self.bundle_failures = Counter(
            "regate_bundle_failures_total",
            "Bundle updates that failed; the previous bundle kept serving.",
            ("reason",),
        )
        self.gauges: list[Gauge | GaugeFamily] = []

    def gauge(
        self,
        name: str,
        help_text: str,
        read: Callable[[], float],
        labels: Callable[[], Mapping[str, str]] | None = None,
    ) -> None:
        self.gauges.append(Gauge(name, help_text, read, labels))

    def gauge_family(
        self,
        name: str,
        help_text: str,
        labels: tuple[str, ...],
        read: Callable[[], Mapping[tuple[str, ...], float]],
    ) -> None:
        self.gauges.append(GaugeFamily(name, help_text, labels, read))

    def render(self) -> str:
        lines: list[str] = []
        for metric in (
            self.requests,
            self.decision_seconds,
            self.upstream_seconds,
            self.upstream_errors,
            self.retries,
            self.fallbacks,
            self.policy_errors,
            self.bundle_activations,
            self.bundle_failures,
        ):
            lines += metric.render()
        for gauge in self.gauges:
            lines += gauge.render()
        return "\n".join(lines) + "\n"
