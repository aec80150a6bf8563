"""Signed decision bundles cross between regate and OPA both ways, and decide the same on both sides.

``test_opa_interop`` proves the signatures cross; this suite takes the shipped
default bundle (with the Rego library it uses), signs it with RS256 and ES256
keys on one side, loads it with verification on the other, and compares the
decision of every default-bundle case: regate's embedded engine on the bundle
regate loaded vs ``opa run -b ... --verification-key`` on the same archive.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from adapters.cli.build_cmd import bundle_files
from adapters.cli.main import main as regate_main
from adapters.policy_input import build_policy_input
from engine.bundle.cases import load_cases
from engine.bundle.loader import Bundle, load_bundle
from engine.config import default_config
from engine.document import DEFAULT_PRINCIPAL
from engine.errors import InputError
from engine.evaluators.embedded import EmbeddedEvaluator
from engine.resources import default_bundle_path
from engine.runtime import provider_context
from tests.engine.bundle.test_opa_interop import write_keys

ALGORITHMS = ["RS256", "ES256"]


def case_documents(bundle: Bundle) -> list[dict[str, Any]]:
    """Canonical documents (findings included) of the default bundle's decision cases."""
    config = default_config({})
    docs = []
    for index, case in enumerate(load_cases(default_bundle_path())):
        context = (
            dict(case.context)
            if case.context
            else {"providers": provider_context(config), "usage": {}}
        )
        context.setdefault("providers", {})
        context.setdefault("usage", {})
        try:
            doc = build_policy_input(
                case.request,
                api=case.api,
                principal=case.principal or DEFAULT_PRINCIPAL,
                context=context,
                request_id=f"req_case{index}",
            ).document
        except InputError:
            continue  # a case about a malformed request never reaches Rego
        doc["findings"] = bundle.detectors.scan(doc)
        docs.append(doc)
    return docs


def regate_decisions(bundle: Bundle, docs: list[dict[str, Any]]) -> list[Any]:
    evaluator = EmbeddedEvaluator.from_bundle(bundle)
    return [evaluator.evaluate_sync(bundle.query, doc) for doc in docs]


def opa_decisions(
    opa: str, archive: Path, public: Path, algorithm: str, query: str, docs: list[dict[str, Any]]
) -> list[Any]:
    """Each document's decision from ``opa run -b archive --verification-key public`` (one REPL session)."""
    lines = "".join(f"{query} with input as {json.dumps(doc)}\n" for doc in docs)
    command = [opa, "run", "-b", str(archive), "--verification-key", str(public)]
    command += ["--signing-alg", algorithm, "--format", "json"]
    result = subprocess.run(command, input=lines, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    decoder, text, at, values = json.JSONDecoder(), result.stdout, result.stdout.index("{"), []
    while at < len(text):
        report, at = decoder.raw_decode(text, at)
        values.append(
            report["result"][0]["expressions"][0]["value"] if "result" in report else None
        )
        while at < len(text) and text[at].isspace():
            at += 1
    return values


def assert_same_decisions(ours: list[Any], theirs: list[Any]) -> None:
    assert len(ours) == len(theirs) >= 40
    for index, (mine, opa) in enumerate(zip(ours, theirs, strict=True)):
        assert mine == opa, f"case {index}: regate {mine} != OPA {opa}"
    # The cases exercise every kind of decision, so agreeing means something.
    assert {d["action"] for d in ours} == {"allow", "redact", "route", "deny"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_regate_build_signed_bundle_decides_the_same_in_opa(
    opa_bin: str, tmp_path: Path, algorithm: str
) -> None:
    private, public = write_keys(tmp_path, algorithm)
    archive = tmp_path / "regate.tar.gz"
    command = ["build", str(default_bundle_path()), "-o", str(archive), "--revision", "interop-1"]
    assert regate_main([*command, "--signing-key", str(private), "--signing-alg", algorithm]) == 0

    bundle = load_bundle(archive, verification_key=public.read_bytes())
    assert bundle.verified and bundle.revision == "interop-1"
    docs = case_documents(bundle)
    theirs = opa_decisions(opa_bin, archive, public, algorithm, bundle.query, docs)
    assert_same_decisions(regate_decisions(bundle, docs), theirs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_opa_build_signed_bundle_loads_in_regate_and_decides_the_same(
    opa_bin: str, tmp_path: Path, algorithm: str
) -> None:
    private, public = write_keys(tmp_path, algorithm)
    source = tmp_path / "src"
    for rel, data in bundle_files(load_bundle(default_bundle_path()), "opa-built-1").items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    archive = tmp_path / "opa.tar.gz"
    command = [opa_bin, "build", "-b", ".", "-o", str(archive)]
    command += ["--signing-key", str(private), "--signing-alg", algorithm]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=60)

    bundle = load_bundle(archive, verification_key=public.read_bytes())
    assert bundle.verified and bundle.revision == "opa-built-1"
    docs = case_documents(bundle)
    ours = regate_decisions(bundle, docs)
    assert_same_decisions(
        ours, opa_decisions(opa_bin, archive, public, algorithm, bundle.query, docs)
    )
    # ...and the same as the source bundle regate shipped.
    assert ours == regate_decisions(load_bundle(default_bundle_path()), docs)
