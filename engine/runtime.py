"""Compose the decision path from a configuration: evaluator, routes, provider context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.bundle.loader import Bundle
from engine.config import Config
from engine.enforce import Target
from engine.evaluators.base import Evaluator, evaluator_class
from engine.pipeline import DecisionPipeline


def routes_from_config(config: Config) -> dict[str, tuple[Target, ...]]:
    return {
        model: tuple(Target(t.provider, t.model or "") for t in targets)
        for model, targets in config.routes.items()
    }


def provider_context(
    config: Config, health: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """``context.providers`` for the policy: type, region and health, never credentials.

    ``health`` holds what the gateway knows of each provider (``healthy``, its
    circuit breaker's ``state``); a provider it does not mention is healthy.
    """
    health = health or {}
    return {
        name: {"type": p.type, "region": p.region, "healthy": True, **health.get(name, {})}
        for name, p in config.providers.items()
    }


def make_evaluator(bundle: Bundle, config: Config, engine: str | None = None) -> Evaluator:
    name = engine or config.policy.engine
    cls = evaluator_class(name)
    return cls.from_bundle(bundle, config)  # type: ignore[no-any-return]


def make_pipeline(bundle: Bundle, config: Config, engine: str | None = None) -> DecisionPipeline:
    return DecisionPipeline(
        bundle,
        make_evaluator(bundle, config, engine),
        providers=config.providers.keys(),
        routes=routes_from_config(config),
        on_error=config.policy.on_error,
        timeout_ms=config.policy.timeout_ms,
    )
