"""Signed bundles cross between regate and the real OPA binary, in both directions."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from engine.bundle.archive import read_archive, read_directory, write_archive
from engine.bundle.signing import sign_files, verify_files
from engine.errors import SignatureError

CASES = Path(__file__).parent / "data" / "canonical_cases.yaml"
SOURCE = {
    ".manifest": json.dumps({"revision": "r7", "roots": ["regate"]}),
    "regate/policy.rego": "package regate\n\nanswer := data.regate.limits.max_tokens + 1\n",
    "regate/data.yaml": "limits:\n  max_tokens: 41\n  ratio: 1.50\nwords: [yes, 2024-01-01]\n",
    "data.json": json.dumps({"regate": {"extra": {"b": 1.0, "a": "<&>"}}}),
    "cases/allow.yaml": "expect: allow\n",
}
KeyPair = tuple[Path, Path]


def write_keys(directory: Path, algorithm: str) -> KeyPair:
    """A private/public PEM pair (or an HMAC secret twice) on disk, as the CLI tools take them."""
    private_path, public_path = directory / f"{algorithm}.key", directory / f"{algorithm}.pub"
    if algorithm.startswith("HS"):
        private_path.write_bytes(b"interop secret")
        return private_path, private_path
    if algorithm.startswith("ES"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = ec.generate_private_key(
            curve[algorithm]
        )
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def write_source(directory: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return directory


def opa_query(
    opa: str, bundle: Path, key: Path, algorithm: str, query: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Load ``bundle`` in ``opa run`` with signature verification and evaluate one query."""
    command = [opa, "run", "-b", str(bundle), "--verification-key", str(key)]
    command += ["--signing-alg", algorithm, "--format", "json", *extra]
    return subprocess.run(command, input=query + "\n", capture_output=True, text=True, timeout=30)


def opa_value(stdout: str) -> object:
    """The value of the one expression the REPL evaluated (its JSON follows a text banner)."""
    report = json.loads(stdout[stdout.index("{") :])
    return report["result"][0]["expressions"][0]["value"]


# -- OPA signs, regate verifies ------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "PS256", "HS256"])
def test_bundle_signed_by_opa_build_verifies_in_regate(
    opa_bin: str, tmp_path: Path, algorithm: str
) -> None:
    private, public = write_keys(tmp_path, algorithm)
    source = write_source(tmp_path / "src", SOURCE)
    out = tmp_path / "opa.tar.gz"
    command = [opa_bin, "build", "-b", ".", "--ignore", "cases", "-o", str(out)]
    command += ["--signing-key", str(private), "--signing-alg", algorithm]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=60)

    files = read_archive(out)
    names = [".manifest", "data.json", "regate/policy.rego"]
    assert verify_files(files, key=public.read_bytes(), algorithm=algorithm) == names
    assert verify_files(files, key=public.read_bytes()) == names

    files["regate/policy.rego"] = files["regate/policy.rego"].replace(b"+ 1", b"+ 2")
    with pytest.raises(SignatureError, match=r"^regate/policy\.rego: digest mismatch"):
        verify_files(files, key=public.read_bytes())


# -- regate signs, OPA verifies ------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "PS256", "HS256"])
def test_bundle_built_and_signed_by_regate_loads_in_opa(
    opa_bin: str, tmp_path: Path, algorithm: str
) -> None:
    private, public = write_keys(tmp_path, algorithm)
    files = read_directory(write_source(tmp_path / "src", SOURCE))
    assert "cases/allow.yaml" not in files
    signature = sign_files(files, key_pem_or_secret=private.read_bytes(), algorithm=algorithm)
    bundle = tmp_path / "regate.tar.gz"
    bundle.write_bytes(write_archive({**files, ".signatures.json": signature}))

    result = opa_query(opa_bin, bundle, public, algorithm, "data.regate.answer")
    assert result.returncode == 0, result.stdout + result.stderr
    assert opa_value(result.stdout) == 42


def test_opa_refuses_a_regate_bundle_tampered_after_signing(opa_bin: str, tmp_path: Path) -> None:
    private, public = write_keys(tmp_path, "RS256")
    files = {k: v.encode() for k, v in SOURCE.items() if not k.startswith("cases/")}
    signature = sign_files(files, key_pem_or_secret=private.read_bytes())
    files["regate/data.yaml"] = files["regate/data.yaml"].replace(b"41", b"99")
    bundle = tmp_path / "tampered.tar.gz"
    bundle.write_bytes(write_archive({**files, ".signatures.json": signature}))

    result = opa_query(opa_bin, bundle, public, "RS256", "data.regate.answer")
    assert result.returncode != 0
    assert "regate/data.yaml: digest mismatch" in result.stdout + result.stderr


def test_opa_checks_the_scope_regate_signs(opa_bin: str, tmp_path: Path) -> None:
    private, public = write_keys(tmp_path, "ES256")
    files = {k: v.encode() for k, v in SOURCE.items() if not k.startswith("cases/")}
    signature = sign_files(
        files, key_pem_or_secret=private.read_bytes(), algorithm="ES256", scope="prod"
    )
    bundle = tmp_path / "scoped.tar.gz"
    bundle.write_bytes(write_archive({**files, ".signatures.json": signature}))

    accepted = opa_query(opa_bin, bundle, public, "ES256", "data.regate.answer", "--scope", "prod")
    refused = opa_query(opa_bin, bundle, public, "ES256", "data.regate.answer", "--scope", "dev")
    assert accepted.returncode == 0 and opa_value(accepted.stdout) == 42
    assert refused.returncode != 0 and "scope mismatch" in refused.stdout + refused.stderr


def test_opa_inspect_reads_a_regate_archive(opa_bin: str, tmp_path: Path) -> None:
    files = {k: v.encode() for k, v in SOURCE.items() if not k.startswith("cases/")}
    bundle = tmp_path / "plain.tar.gz"
    bundle.write_bytes(write_archive(files))
    result = subprocess.run(
        [opa_bin, "inspect", "--format", "json", str(bundle)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["manifest"] == {"revision": "r7", "roots": ["regate"]}
    report["namespaces"] = {ns: sorted(paths) for ns, paths in report["namespaces"].items()}
    assert report["namespaces"] == {
        "data": ["/data.json"],
        "data.regate": ["/regate/data.yaml", "/regate/policy.rego"],
    }


def test_opa_agrees_with_every_canonical_hashing_case(opa_bin: str, tmp_path: Path) -> None:
    """Each structured-file case, signed by regate, must pass OPA's own digest check."""
    private, public = write_keys(tmp_path, "RS256")
    cases = yaml.safe_load(CASES.read_text("utf-8"))
    files: dict[str, bytes] = {}
    for index, case in enumerate(cases):
        raw = (
            base64.b64decode(case["content_base64"])
            if "content_base64" in case
            else case["content"].encode()
        )
        # The manifest case roots the bundle at "regate", so every data case lives there.
        name = case["file"] if case["file"] == ".manifest" else f"regate/c{index}/{case['file']}"
        files[name] = raw
    signature = sign_files(files, key_pem_or_secret=private.read_bytes())
    bundle = tmp_path / "cases.tar.gz"
    bundle.write_bytes(write_archive({**files, ".signatures.json": signature}))

    assert ".manifest" in files
    result = opa_query(opa_bin, bundle, public, "RS256", "count(data.regate)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert opa_value(result.stdout) == len(files) - 1
