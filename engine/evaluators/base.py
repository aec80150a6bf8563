"""The evaluator interface: one bundle in, one method to evaluate a query on an input.

Implementations are registered by name (``embedded``, ``opa``) and imported
lazily, so an optional engine's dependencies stay optional.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

_REGISTRY: dict[str, str] = {
    "embedded": "engine.evaluators.embedded:EmbeddedEvaluator",
    "opa": "engine.evaluators.opa:OpaEvaluator",
}


@dataclass(frozen=True)
class RegoTestResult:
    """Outcome of one Rego ``test_`` rule."""

    package: str
    name: str
    file: str
    line: int | None
    passed: bool
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True)
class CoverageReport:
    """Per-file covered / not-covered line numbers of the policy files."""

    files: dict[str, tuple[frozenset[int], frozenset[int]]] = field(default_factory=dict)

    @property
    def percent(self) -> float:
        covered = sum(len(c) for c, _ in self.files.values())
        total = covered + sum(len(n) for _, n in self.files.values())
        return 100.0 if total == 0 else 100.0 * covered / total


class Evaluator(Protocol):
    """Evaluates Rego for one loaded bundle. ``evaluate`` raises ``EvaluationError``."""

    name: str

    async def evaluate(self, query: str, input_doc: Mapping[str, Any]) -> Any:
        """Value of ``query`` (a rule path such as ``data.regate.decision``) or
        ``None`` when undefined."""
        ...

    async def prepare(self) -> None:
        """Make the bundle ready to evaluate (the OPA engine pushes it); call before serving."""
        ...

    async def close(self) -> None:
        """Release what the evaluator holds (connections, pushed policies)."""
        ...


def evaluator_class(name: str) -> type[Any]:
    """The evaluator class registered as ``name``."""
    try:
        module_name, attr = _REGISTRY[name].split(":")
    except KeyError:
        raise ValueError(
            f"unknown evaluator {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
