"""Generated canonical documents decide identically on the embedded engine (its VM and
its interpreter) and on OPA, for the default and the strict bundle.

Documents are valid against ``schemas/request.v1.json`` and built to reach every
branch of the shipped policies: texts mix the detector corpus
(``tests/engine/detectors/*.yaml``: emails, phones, SSNs, cards, IBANs, cloud keys,
JWTs... and their false positives) with free Unicode; principals are EU-resident or
not; models are allowed, prefix-allowed or not; providers are EU or not, healthy or not.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.document import VERSION, measure
from engine.errors import EvaluationError
from engine.resources import schema_path
from tests.conformance.conftest import EnginesFor, Tally

PER_BUNDLE = 1_050  # two bundles: more than 2,000 generated documents in all
CORPUS_DIR = Path(__file__).resolve().parent.parent / "engine" / "detectors"
VALIDATOR = jsonschema_rs.Draft202012Validator(
    json.loads(schema_path("request.v1.json").read_text()), validate_formats=True
)


def _corpus(kind: str) -> list[str]:
    """Every ``true_positives`` or ``false_positives`` text of the detector corpus."""
    texts = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")).get(kind, []):
            texts.append(entry["text"] if isinstance(entry, dict) else str(entry))
    return texts


SENSITIVE = _corpus("true_positives")
BENIGN = [
    *_corpus("false_positives"),
    "",
    "hello",
    "please summarise:",
    "Grüße 😀",
    "key:",
    "\n",
    "a@b",
    "+1",
    "DE89",
    "<b>&amp;</b>",
    "\u2028",
    '"quoted"',
    "back\\slash",
    "👍🏽",
    "\u200bzero width",
    "\uff46\uff55\uff4c\uff4c",
    "🇩🇪",
]
CODE_POINTS = [(0x20, 0x7E), (0xA0, 0x2FFF), (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF)]

# Hypothesis draws what the policies branch on (api, model, principal, providers, how
# sensitive the texts are); the texts come from a Random it seeds, because every draw
# costs (~0.1 ms here) and a document holds dozens of texts.
RANDOMS = st.randoms(use_true_random=True)
SENSITIVITY = st.sampled_from([0.0, 0.0, 0.05, 0.3, 0.8])
APIS = st.sampled_from(["openai.chat", "anthropic.messages", "openai.embeddings"])
KINDS = st.sampled_from(["app", "agent", "user"])
WORD = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=10)
REGIONS = st.sampled_from(
    ["eu", "eu-west-1", "westeurope", "europe-west4", "us", "us-east-1", "asia", "EU", ""]
)
LABELS = st.fixed_dictionaries({}, optional={"region": REGIONS, "env": st.just("prod")})
STRICT_MODELS = st.sampled_from(
    ["gpt-4o-mini", "echo", "claude-haiku-4-5"]
)  # allowed by both bundles
MODELS = st.one_of(
    STRICT_MODELS,
    STRICT_MODELS,
    st.sampled_from(
        ["gpt-4o", "gpt-4.1-nano", "o3-mini", "text-embedding-3-small", "claude-sonnet-4"]
    ),
    st.sampled_from(["gpt-4", "claude-3-opus", "llama-3.1", "gpt-4o-mini-2024", "gpt-4.1"]),
    st.text(min_size=1, max_size=12),
)
FLEETS = st.sampled_from(
    [  # gateways as configured in practice...
        {
            "openai": {"healthy": True, "region": "us"},
            "azure-eu": {"healthy": True, "region": "eu"},
        },
        {
            "openai": {"healthy": True, "region": "us"},
            "azure-eu": {"healthy": False, "region": "eu"},
        },
        {
            "azure-eu": {"healthy": True, "region": "westeurope"},
            "anthropic-eu": {"healthy": True, "region": "eu-west-1"},
        },
        {"echo": {"healthy": True, "region": "us"}, "echo-eu": {"healthy": True, "region": "eu"}},
        {"echo": {"healthy": True, "region": "us"}},
    ]
)
PROVIDERS = FLEETS | st.dictionaries(  # ...and any other
    st.sampled_from(["openai", "azure-eu", "anthropic-eu", "echo", "mistral", "bedrock"]),
    st.fixed_dictionaries({"healthy": st.booleans()}, optional={"region": REGIONS}),
    max_size=3,
)
ROLES = ["system", "developer", "user", "user", "assistant", "tool"]


@dataclass
class Texts:
    """The texts of one document: each fragment is a detector's true positive with the
    document's ``sensitivity``, else benign (false positives, filler, Unicode noise)."""

    rng: random.Random
    sensitivity: float

    def text(self) -> str:
        rng = self.rng
        parts = [
            rng.choice(SENSITIVE if rng.random() < self.sensitivity else BENIGN)
            for _ in range(rng.randint(0, 3))
        ]
        if rng.random() < 0.3:
            low, high = rng.choice(CODE_POINTS)
            noise = "".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 8)))
            parts.insert(rng.randint(0, len(parts)), noise)
        return rng.choice([" ", "", "\n"]).join(parts)

    def part(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.85:
            return {"type": "text", "text": self.text()}
        if roll < 0.93:
            return {
                "type": "image",
                "media_type": "image/png",
                "source": "base64",
                "bytes": self.rng.randint(0, 10**6),
            }
        return {
            "type": "image",
            "media_type": "image/jpeg",
            "source": "url",
            "bytes": 0,
            "url": "https://x.example/a.jpg",
        }

    def arguments(self) -> dict[str, Any] | str:
        if self.rng.random() < 0.2:
            return self.text()  # a client's invalid JSON arguments stay a string
        return {
            f"arg{i}": self.rng.choice([self.text(), 3, [self.text()]])
            for i in range(self.rng.randint(0, 3))
        }

    def message(self, index: int, role: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": role,
            "content": [self.part() for _ in range(self.rng.randint(0, 3))],
        }
        if role == "assistant" and self.rng.random() < 0.5:
            message["tool_calls"] = [
                {"id": f"call_{index}", "name": f"tool_{i}", "arguments": self.arguments()}
                for i in range(self.rng.randint(1, 2))
            ]
        if role == "tool":
            message["tool_call_id"] = f"call_{index}"
        return message


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical document (Contract 1) without findings: the bundle's detectors add them."""
    texts = Texts(draw(RANDOMS), draw(SENSITIVITY))
    rng = texts.rng
    api = draw(APIS)
    principal: dict[str, Any] = {"id": draw(WORD), "kind": draw(KINDS)}
    if rng.random() < 0.5:
        principal["team"] = "finance"
    principal["labels"] = draw(LABELS)
    if api == "openai.embeddings":
        messages = [
            {"role": "user", "content": [{"type": "text", "text": texts.text()}]}
            for _ in range(rng.randint(1, 3))
        ]
    else:
        messages = [texts.message(i, rng.choice(ROLES)) for i in range(rng.randint(1, 4))]
    doc: dict[str, Any] = {
        "version": VERSION,
        "id": f"req_{rng.getrandbits(64):026d}",
        "time": "2026-11-29T21:58:52.123Z",
        "principal": principal,
        "api": api,
        "operation": "embeddings" if api == "openai.embeddings" else "chat",
        "model": draw(MODELS),
        "messages": messages,
        "tools": [
            {"name": f"tool_{i}", "description": texts.text()} for i in range(rng.randint(0, 2))
        ],
        "params": {"max_tokens": rng.randint(1, 10**5)} if rng.random() < 0.5 else {},
        "metadata": {f"tag{i}": texts.text()[:512] for i in range(rng.randint(0, 3))},
        "findings": [],
        "context": {"providers": draw(PROVIDERS), "usage": {}},
    }
    doc["size"] = measure(doc)
    return doc


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except EvaluationError:  # an engine failing agrees only with the others failing
        return "<evaluation error>"


def _label(result: Any) -> str:
    return str(result.get("action")) if isinstance(result, dict) else str(result)


@pytest.mark.parametrize("bundle", ["default", "strict"])
def test_generated_documents_decide_the_same_on_every_path(
    bundle: str, engines: EnginesFor, run: Callable[[Awaitable[Any]], Any], tally: Tally
) -> None:
    pair = engines(bundle)
    query = pair.bundle.query
    divergent: list[tuple[dict[str, Any], dict[str, Any]]] = []
    seen = {"documents": 0, "invalid": 0, "with_findings": 0}
    actions: set[str] = set()

    @settings(
        max_examples=PER_BUNDLE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(doc=documents())
    def decide_everywhere(doc: dict[str, Any]) -> None:
        doc["findings"] = pair.bundle.detectors.scan(doc)
        seen["documents"] += 1
        seen["invalid"] += not VALIDATOR.is_valid(doc)
        seen["with_findings"] += bool(doc["findings"])
        results = {
            "vm": _outcome(lambda: pair.embedded.evaluate_sync(query, doc)),
            "interpreter": _outcome(lambda: pair.embedded.interpret(query, doc)),
            "opa": _outcome(lambda: run(pair.opa.evaluate(query, doc))),
        }
        actions.add(_label(results["opa"]))
        if not results["vm"] == results["interpreter"] == results["opa"]:
            divergent.append((doc, results))

    decide_everywhere()  # records divergences instead of raising, so all are counted
    tally.documents[bundle] = tally.documents.get(bundle, 0) + seen["documents"]
    tally.divergences += len(divergent)
    assert divergent == [], (
        f"{len(divergent)} of {seen['documents']} documents diverge; first: {divergent[0]}"
    )
    assert seen["documents"] >= 1_000
    assert seen["invalid"] == 0
    assert seen["documents"] // 5 < seen["with_findings"] < seen["documents"]
    assert actions >= {"allow", "deny", "route"} | ({"redact"} if bundle == "default" else set())
