"""``regate build``: reproducible, self-contained OPA bundles, signed and verified as OPA does."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from engine.bundle.archive import read_archive, write_archive
from engine.bundle.loader import load_bundle

from .support import DEFAULT_BUNDLE, EXAMPLES, REPO, Regate, write_files


def build(regate: Regate, out: Path, *extra: str | Path, bundle: Path = DEFAULT_BUNDLE) -> bytes:
    result = regate("build", bundle, "-o", out, *extra)
    assert result.code == 0, result.err
    assert f"built {out}" in result.err
    return out.read_bytes()


def test_build_is_byte_identical_across_runs(
    regate: Regate, regate_process: Regate, tmp_path: Path
) -> None:
    first = build(regate, tmp_path / "a.tar.gz", "--revision", "r1")
    second = build(regate, tmp_path / "b.tar.gz", "--revision", "r1")
    assert first == second
    in_another_process = regate_process(
        "build", DEFAULT_BUNDLE, "-o", tmp_path / "c.tar.gz", "--revision", "r1"
    )
    assert in_another_process.code == 0, in_another_process.err
    assert (tmp_path / "c.tar.gz").read_bytes() == first
    assert build(regate, tmp_path / "d.tar.gz", "--revision", "r2") != first


def test_revision_lands_in_the_manifest(regate: Regate, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    build(regate, out, "--revision", "2026.11.29-abc123")
    manifest = json.loads(read_archive(out)[".manifest"])
    source = json.loads((DEFAULT_BUNDLE / ".manifest").read_text())
    assert manifest == {**source, "revision": "2026.11.29-abc123"}
    checked = regate("check", out, "--format", "json")
    assert checked.code == 0
    assert checked.json()["bundles"][0]["revision"] == "2026.11.29-abc123"


def test_built_bundle_carries_the_library_it_uses(regate: Regate, tmp_path: Path) -> None:
    out = tmp_path / "bundle.tar.gz"
    build(regate, out)
    files = read_archive(out)
    policy = (DEFAULT_BUNDLE / "policy" / "decision.rego").read_text()
    imported = set(re.findall(r"^import data\.regate\.lib\.(\w+)", policy, re.MULTILINE))
    assert imported >= {"decision", "models", "pii", "secrets"}
    for name in imported:
        assert (
            files[f"regate/lib/{name}.rego"]
            == (REPO / "rules" / "regate" / "lib" / f"{name}.rego").read_bytes()
        )
    assert not any(path.startswith("cases/") for path in files), (
        "decision cases stay with the source"
    )
    assert not any(path.startswith("regate/lib/") and path.endswith("_test.rego") for path in files)
    # Self-contained: the loader finds the library inside, and adds nothing from rules/.
    assert not any(module.from_library for module in load_bundle(out).modules)
    result = regate(
        "eval", out, "--request", EXAMPLES / "requests" / "redact-openai.json", "--format", "json"
    )
    assert result.code == 0
    assert result.json()["decision"]["action"] == "redact"


def write_key_pair(directory: Path, alg: str) -> tuple[Path, Path]:
    """(signing key file, verification key file) for ``alg``, made for this test."""
    private = directory / f"{alg}.key"
    public = directory / f"{alg}.pub"
    if alg == "HS256":
        private.write_bytes(base64.b64encode(b"regate-test-shared-secret-0123456789"))
        public.write_bytes(private.read_bytes())
        return private, public
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def jws_header(signatures: bytes) -> dict[str, str]:
    [token] = json.loads(signatures)["signatures"]
    header = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))))


def retarred(source: Path, out: Path, path: str, content: bytes | None) -> Path:
    """A copy of the archive ``source`` with ``path`` replaced (or removed when ``None``)."""
    files = read_archive(source)
    if content is None:
        del files[path]
    else:
        files[path] = content
    out.write_bytes(write_archive(files))
    return out


@pytest.mark.parametrize("alg", ["RS256", "ES256", "HS256"])
def test_signed_bundle_verifies_and_tampering_is_named(
    regate: Regate, tmp_path: Path, alg: str
) -> None:
    signing_key, verification_key = write_key_pair(tmp_path, alg)
    signed = tmp_path / "signed.tar.gz"
    build(
        regate, signed, "--signing-key", signing_key, "--signing-alg", alg, "--revision", "signed-1"
    )
    files = read_archive(signed)
    assert jws_header(files[".signatures.json"])["alg"] == alg

    good = regate("check", signed, "--verification-key", verification_key, "--format", "json")
    assert good.code == 0, good.out
    assert good.json()["bundles"][0]["verified"] is True

    policy = "policy/decision.rego"
    tampered = retarred(
        signed, tmp_path / "tampered.tar.gz", policy, files[policy] + b"\n# one more line\n"
    )
    bad = regate("check", tampered, "--verification-key", verification_key)
    assert bad.code == 1
    assert f"{tampered}: {policy}: digest mismatch" in bad.out

    as_json = regate("check", tampered, "--verification-key", verification_key, "--format", "json")
    [problem] = as_json.json()["bundles"][0]["problems"]
    assert problem["code"] == "bundle_signature_error"
    assert problem["file"] == str(tampered)
    assert problem["message"].startswith(f"{policy}: ")


def test_changed_data_and_removed_files_fail_verification(regate: Regate, tmp_path: Path) -> None:
    signing_key, verification_key = write_key_pair(tmp_path, "HS256")
    signed = tmp_path / "signed.tar.gz"
    build(regate, signed, "--signing-key", signing_key, "--signing-alg", "HS256")
    data = json.loads(read_archive(signed)["data.json"])
    data["regate"]["policy"]["max_tokens"] = 1_000_000
    changed = retarred(signed, tmp_path / "data.tar.gz", "data.json", json.dumps(data).encode())
    result = regate("check", changed, "--verification-key", verification_key)
    assert result.code == 1 and "data.json: digest mismatch" in result.out

    removed = retarred(signed, tmp_path / "removed.tar.gz", "regate/lib/pii.rego", None)
    result = regate("check", removed, "--verification-key", verification_key)
    assert (
        result.code == 1
        and "regate/lib/pii.rego: listed in .signatures.json but missing" in result.out
    )


def test_wrong_key_and_unsigned_bundle_are_refused(regate: Regate, tmp_path: Path) -> None:
    signing_key, _ = write_key_pair(tmp_path, "ES256")
    (tmp_path / "other").mkdir()
    _, other_public = write_key_pair(tmp_path / "other", "ES256")
    signed = tmp_path / "signed.tar.gz"
    build(regate, signed, "--signing-key", signing_key, "--signing-alg", "ES256")
    wrong = regate("check", signed, "--verification-key", other_public)
    assert wrong.code == 1 and "signature verification failed" in wrong.out

    unsigned = tmp_path / "unsigned.tar.gz"
    build(regate, unsigned)
    refused = regate("check", unsigned, "--verification-key", other_public)
    assert refused.code == 1 and "not signed" in refused.out


def test_signed_bundle_verifies_as_a_process(regate_process: Regate, tmp_path: Path) -> None:
    signing_key, verification_key = write_key_pair(tmp_path, "RS256")
    out = tmp_path / "signed.tar.gz"
    built = regate_process(
        "build", DEFAULT_BUNDLE, "-o", out, "--signing-key", signing_key, "--signing-alg", "RS256"
    )
    assert built.code == 0, built.err
    checked = regate_process("check", out, "--verification-key", verification_key)
    assert checked.code == 0, checked.out + checked.err
    assert checked.out.startswith(f"ok     {out}")


def test_broken_bundle_is_not_built(regate: Regate, tmp_path: Path) -> None:
    bundle = write_files(
        tmp_path / "bad", {"regate/p.rego": "package regate\n\nx := opa.runtime()\n"}
    )
    out = tmp_path / "out.tar.gz"
    result = regate("build", bundle, "-o", out)
    assert result.code == 1
    assert f"{bundle / 'regate' / 'p.rego'}:3: builtin opa.runtime is forbidden" in result.err
    assert not out.exists()
