"""The gateway's side of a bundle service: fail closed until a bundle is active, build each new
pipeline before it is swapped in, retire the old one, and report status to ``/readyz``.

The gateway reads ``Gateway.pipeline`` once per request, so assigning a new
pipeline is atomic for new requests while requests already deciding finish
on the one they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx

from adapters.bundle_service import Activate, BundleFailure, BundleService
from engine.bundle.cache import BundleCache
from engine.bundle.loader import Bundle, Manifest
from engine.bundle.signing import load_verification_key
from engine.config import Config
from engine.detectors import compile_detectors
from engine.errors import EvaluationError
from engine.pipeline import DecisionPipeline
from engine.runtime import make_pipeline, routes_from_config

# How long start-up waits for the service before it falls back to the cache.
FIRST_ACTIVATION_TIMEOUT_S = 10.0
NO_BUNDLE = "no policy bundle is active yet: the bundle service delivered none and no cached bundle could be used"


class _NoBundle:
    """Stands in for an evaluator until the first bundle is active: every decision fails closed."""

    name = "none"

    async def evaluate(self, query: str, input_doc: Any) -> Any:
        raise EvaluationError(NO_BUNDLE)

    async def prepare(self) -> None:
        return None

    async def close(self) -> None:
        return None


def pending_pipeline(config: Config) -> DecisionPipeline:
    """A pipeline that denies everything with ``policy.error`` (503), whatever ``on_error`` says:
    failing open is for a policy that fails, not for having none."""
    empty = Bundle(
        source="",
        files={},
        manifest=Manifest(),
        modules=(),
        data={},
        digest="",
        detectors=compile_detectors([]),
        request_schemas={},
    )
    return DecisionPipeline(
        empty,
        _NoBundle(),
        providers=config.providers.keys(),
        routes=routes_from_config(config),
        on_error="deny",
        timeout_ms=config.policy.timeout_ms,
    )


def bundle_service_for(
    config: Config,
    *,
    activate: Activate,
    on_failure: Callable[[BundleFailure], None] | None = None,
    client: httpx.AsyncClient | None = None,
) -> BundleService:
    """The client of ``config.policy.bundle`` (an http(s) URL), with its key, scope, polling and cache."""
    policy = config.policy
    key = policy.verification_key
    return BundleService(
        policy.bundle,
        activate=activate,
        polling=policy.polling,
        verification_key=load_verification_key(key.file) if key is not None else None,
        scope=key.scope if key is not None else None,
        cache=BundleCache(policy.bundle_cache, policy.bundle),
        client=client,
        on_failure=on_failure,
    )


async def build_pipeline(bundle: Bundle, config: Config) -> DecisionPipeline:
    """The pipeline for a new bundle, ready to serve (an OPA engine has its modules pushed)."""
    pipeline = make_pipeline(bundle, config)
    await pipeline.evaluator.prepare()
    return pipeline


class RetiredEvaluators:
    """Closes the evaluators of replaced pipelines once requests still deciding on them are done.

    A decision is bounded by ``policy.timeout_ms``, so waiting ``grace`` seconds
    (several time-outs) is enough; an embedded evaluator's close does nothing.
    """

    def __init__(self, grace: float) -> None:
        self._grace = grace
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, evaluator: object) -> None:
        task = asyncio.create_task(self._close_later(evaluator))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close_later(self, evaluator: object) -> None:
        try:
            await asyncio.sleep(self._grace)
        finally:
            close = getattr(evaluator, "close", None)
            if close is not None:
                await close()

    async def close_all(self) -> None:
        """Close every retired evaluator now (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def bundle_report(pipeline: DecisionPipeline, service: BundleService | None) -> dict[str, Any]:
    """``bundle`` of ``/readyz``: the active revision and digest, and the service's status."""
    bundle = pipeline.bundle
    report: dict[str, Any] = {"revision": bundle.revision, "digest": bundle.digest}
    if service is not None:
        report["service"] = service.status.as_dict()
    return report
