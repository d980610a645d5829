"""The Prometheus text exposition format, version 0.0.4: metric families written as text.

A `Family` is one metric name with its type, help and samples; `render` writes families in
the order given, each with its `# HELP` and `# TYPE` lines (a family without samples still
declares itself, so a dashboard finds the name before the first event)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["counter", "gauge", "histogram"]
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def format_value(value: float) -> str:
    """A sample value or `le` bound as Prometheus reads it: integers without a point."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


@dataclass
class Family:
    """One metric: `name` without the type's suffix (`_total` is added to a counter's)."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        """One sample; `suffix` is "" for a gauge, and `_bucket`, `_sum` or `_count` for a
        histogram (a counter's `_total` is implied)."""
        if self.kind == "counter":
            suffix = "_total"
        if suffix not in _SUFFIXES[self.kind]:
            raise ValueError(f"{self.kind} {self.name}: no sample suffix {suffix!r}")
        self.samples.append((suffix, labels, value))

    def add_histogram(
        self, bounds: Iterable[tuple[float, int]], total: float, count: int, **labels: str
    ) -> None:
        """A histogram's samples: cumulative counts per upper bound (ascending), then +Inf,
        the sum and the count."""
        for bound, cumulative in bounds:
            self.add(cumulative, "_bucket", **labels, le=format_value(bound))
        self.add(count, "_bucket", **labels, le="+Inf")
        self.add(total, "_sum", **labels)
        self.add(count, "_count", **labels)

    def render(self) -> str:
        declared = f"{self.name}_total" if self.kind == "counter" else self.name
        lines = [f"# HELP {declared} {_escape_help(self.help)}", f"# TYPE {declared} {self.kind}"]
        for suffix, labels, value in self.samples:
            text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            braces = f"{{{text}}}" if text else ""
            lines.append(f"{self.name}{suffix}{braces} {format_value(value)}")
        return "\n".join(lines) + "\n"


def render(families: Iterable[Family]) -> str:
    return "".join(family.render() for family in families)
