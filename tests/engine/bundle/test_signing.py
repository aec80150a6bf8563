"""Bundle signatures: OPA's .signatures.json format, canonical hashing, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from engine.bundle.archive import read_archive
from engine.bundle.canonical import canonical_json
from engine.bundle.signing import (
    file_hash,
    load_signing_key,
    load_verification_key,
    sign_files,
    verify_files,
)
from engine.errors import SignatureError

DATA = Path(__file__).parent / "data"
SECRET = b"correct horse battery staple"
FILES = {
    ".manifest": b'{"revision": "r1", "roots": ["regate"]}',
    "data.json": b'{"regate": {"limits": {"max_tokens": 10}}}',
    "regate/policy.rego": b"package regate\n\ndecision := {}\n",
    "regate/lib/data.yaml": b"threshold: 0.5\n",
}
Keys = dict[str, tuple[bytes, bytes]]


def pem_pair(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    return (
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


@pytest.fixture(scope="module")
def keys() -> Keys:
    """Signing and verification key per algorithm family (one RSA key serves RS and PS)."""
    rsa_pair = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return {
        "RS": rsa_pair,
        "PS": rsa_pair,
        "ES256": pem_pair(ec.generate_private_key(ec.SECP256R1())),
        "ES384": pem_pair(ec.generate_private_key(ec.SECP384R1())),
        "ES512": pem_pair(ec.generate_private_key(ec.SECP521R1())),
        "HS": (SECRET, SECRET),
    }


def pair(keys: Keys, algorithm: str) -> tuple[bytes, bytes]:
    return keys[algorithm] if algorithm.startswith("ES") else keys[algorithm[:2]]


def signed(
    keys: Keys, algorithm: str = "RS256", files: Mapping[str, bytes] = FILES, **kw: Any
) -> dict[str, bytes]:
    private, _ = pair(keys, algorithm)
    signature = sign_files(files, key_pem_or_secret=private, algorithm=algorithm, **kw)
    return {**files, ".signatures.json": signature}


def token_parts(signature_file: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    token = json.loads(signature_file)["signatures"][0]
    header, payload, sig = (
        base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")
    )
    return json.loads(header), json.loads(payload), sig


ALL = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "HS256",
    "HS384",
    "HS512",
]


@pytest.mark.parametrize("algorithm", ALL)
def test_signed_bundle_verifies_with_the_matching_key(keys: Keys, algorithm: str) -> None:
    bundle = signed(keys, algorithm)
    _, public = pair(keys, algorithm)
    assert verify_files(bundle, key=public) == sorted(FILES)
    assert verify_files(bundle, key=public, algorithm=algorithm) == sorted(FILES)


def test_signature_file_has_opa_layout(keys: Keys) -> None:
    raw = signed(keys, "RS256")[".signatures.json"]
    assert raw.startswith(b'{\n "signatures": [\n  "ey')
    assert json.loads(raw)["plugin"] == "_default"
    header, payload, _ = token_parts(raw)
    assert header == {"alg": "RS256", "kid": "default", "typ": "JWT"}
    assert payload["keyid"] == "default"
    assert "scope" not in payload
    assert [f["name"] for f in payload["files"]] == sorted(FILES)
    for entry in payload["files"]:
        assert entry["algorithm"] == "SHA-256"
        assert entry["hash"] == file_hash(entry["name"], FILES[entry["name"]])


def test_key_id_and_scope_go_into_the_token(keys: Keys) -> None:
    header, payload, _ = token_parts(
        signed(keys, "HS256", key_id="ci", scope="write")[".signatures.json"]
    )
    assert header["kid"] == payload["keyid"] == "ci"
    assert payload["scope"] == "write"
    header, payload, _ = token_parts(signed(keys, "HS256", key_id=None)[".signatures.json"])
    assert "kid" not in header and "keyid" not in payload


@pytest.mark.parametrize(("algorithm", "size"), [("ES256", 64), ("ES384", 96), ("ES512", 132)])
def test_ecdsa_signatures_are_raw_r_and_s(keys: Keys, algorithm: str, size: int) -> None:
    _, _, signature = token_parts(signed(keys, algorithm)[".signatures.json"])
    assert len(signature) == size


def test_hmac_signature_is_the_jws_hmac_of_header_and_payload(keys: Keys) -> None:
    raw = signed(keys, "HS256")[".signatures.json"]
    token = json.loads(raw)["signatures"][0]
    signing_input, _, sig = token.rpartition(".")
    expected = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == sig


def test_rs256_signing_is_deterministic(keys: Keys) -> None:
    assert signed(keys, "RS256") == signed(keys, "RS256")


def test_structured_files_may_be_reformatted_without_breaking_the_signature(keys: Keys) -> None:
    bundle = signed(keys, "RS256")
    bundle["data.json"] = b'{\n  "regate" : { "limits" : { "max_tokens" : 10 } }\n}\n'
    bundle[".manifest"] = b'{"roots": ["regate"], "revision": "r1"}'
    bundle["regate/lib/data.yaml"] = b"# comment\nthreshold:   0.5\n"
    assert verify_files(bundle, key=keys["RS"][1]) == sorted(FILES)


# -- refusals: each names the file at fault ---------------------------------


def refused(bundle: Mapping[str, bytes], key: bytes, **kw: Any) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_files(bundle, key=key, **kw)
    assert caught.value.code == "bundle_signature_error"
    return str(caught.value)


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "HS256"])
def test_tampered_file_fails_naming_it(keys: Keys, algorithm: str) -> None:
    bundle = signed(keys, algorithm)
    bundle["regate/policy.rego"] += b"\ndecision := {'action': 'allow'}\n"
    message = refused(bundle, pair(keys, algorithm)[1])
    assert message.startswith("regate/policy.rego: digest mismatch")


def test_changed_data_value_fails_naming_the_data_file(keys: Keys) -> None:
    bundle = signed(keys)
    bundle["regate/lib/data.yaml"] = b"threshold: 0.9\n"
    assert refused(bundle, keys["RS"][1]).startswith("regate/lib/data.yaml: digest mismatch")


def test_unstructured_json_is_hashed_byte_for_byte(keys: Keys) -> None:
    bundle = signed(keys, files={**FILES, "regate/schema.json": b'{"a": 1}'})
    bundle["regate/schema.json"] = b'{"a":1}'
    assert refused(bundle, keys["RS"][1]).startswith("regate/schema.json: digest mismatch")


def test_extra_file_fails_naming_it(keys: Keys) -> None:
    bundle = {**signed(keys), "regate/backdoor.rego": b"package regate"}
    assert (
        refused(bundle, keys["RS"][1])
        == "regate/backdoor.rego: file is not listed in .signatures.json"
    )


def test_missing_file_fails_naming_it(keys: Keys) -> None:
    bundle = signed(keys)
    del bundle["data.json"]
    message = refused(bundle, keys["RS"][1])
    assert message == "data.json: listed in .signatures.json but missing from the bundle"


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "HS256"])
def test_wrong_key_fails(keys: Keys, algorithm: str) -> None:
    if algorithm == "RS256":
        other = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))[1]
    elif algorithm == "ES256":
        other = pem_pair(ec.generate_private_key(ec.SECP256R1()))[1]
    else:
        other = b"another secret"
    message = refused(signed(keys, algorithm), other)
    assert message == f".signatures.json: signature verification failed ({algorithm})"


@pytest.mark.parametrize(
    ("signed_scope", "expected"), [("write", "read"), ("write", None), (None, "read")]
)
def test_wrong_scope_fails(keys: Keys, signed_scope: str | None, expected: str | None) -> None:
    message = refused(signed(keys, scope=signed_scope), keys["RS"][1], scope=expected)
    assert message.startswith(".signatures.json: scope mismatch")


def test_matching_scope_verifies(keys: Keys) -> None:
    assert verify_files(signed(keys, scope="write"), key=keys["RS"][1], scope="write") == sorted(
        FILES
    )


def test_other_key_id_fails_but_same_or_unnamed_passes(keys: Keys) -> None:
    bundle = signed(keys, key_id="prod")
    assert "key id 'prod'" in refused(bundle, keys["RS"][1], key_id="staging")
    assert verify_files(bundle, key=keys["RS"][1], key_id="prod") == sorted(FILES)
    assert verify_files(signed(keys, key_id=None), key=keys["RS"][1], key_id="prod") == sorted(
        FILES
    )


def test_unsigned_bundle_fails(keys: Keys) -> None:
    assert refused(FILES, keys["RS"][1]).startswith(".signatures.json: bundle is not signed")


def test_more_than_one_token_fails(keys: Keys) -> None:
    bundle = signed(keys)
    token = json.loads(bundle[".signatures.json"])["signatures"][0]
    bundle[".signatures.json"] = json.dumps({"signatures": [token, token]}).encode()
    assert "exactly one signature" in refused(bundle, keys["RS"][1])


def test_a_second_signatures_file_fails(keys: Keys) -> None:
    bundle = {**signed(keys), "regate/.signatures.json": b"{}"}
    assert "more than one signatures file" in refused(bundle, keys["RS"][1])


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"signatures": "x"}',
        b'{"signatures": ["a.b"]}',
        b'{"signatures": ["!!.e30.e30"]}',
    ],
)
def test_malformed_signatures_file_fails(keys: Keys, content: bytes) -> None:
    assert refused({**FILES, ".signatures.json": content}, keys["RS"][1]).startswith(
        ".signatures.json:"
    )


def test_unknown_signing_plugin_fails(keys: Keys) -> None:
    bundle = signed(keys)
    document = json.loads(bundle[".signatures.json"])
    bundle[".signatures.json"] = json.dumps({**document, "plugin": "kms"}).encode()
    assert "plugin 'kms'" in refused(bundle, keys["RS"][1])


def test_public_key_cannot_be_used_as_an_hmac_secret(keys: Keys) -> None:
    # The classic JWT confusion: sign HS256 with the verifier's public key bytes.
    forged = signed({**keys, "HS": (keys["RS"][1], keys["RS"][1])}, "HS256")
    assert "does not fit the key" in refused(forged, keys["RS"][1])


def test_token_algorithm_must_match_the_expected_one(keys: Keys) -> None:
    assert "expected RS256" in refused(signed(keys, "PS256"), keys["RS"][1], algorithm="RS256")


def test_unsupported_algorithm_is_refused(keys: Keys) -> None:
    with pytest.raises(SignatureError, match="unsupported signing algorithm 'none'"):
        sign_files(FILES, key_pem_or_secret=SECRET, algorithm="none")
    bundle = signed(keys, "HS256")
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    token = json.loads(bundle[".signatures.json"])["signatures"][0]
    unsigned = header + "." + token.split(".")[1] + "."
    bundle[".signatures.json"] = json.dumps({"signatures": [unsigned]}).encode()
    message = refused(bundle, keys["RS"][1])
    assert message.startswith(".signatures.json: unsupported signing algorithm 'none'")


def test_signing_checks_the_key_type(keys: Keys) -> None:
    with pytest.raises(SignatureError, match="needs an EC private key"):
        sign_files(FILES, key_pem_or_secret=keys["RS"][0], algorithm="ES256")
    with pytest.raises(SignatureError, match="needs an EC private key on secp384r1"):
        sign_files(FILES, key_pem_or_secret=keys["ES256"][0], algorithm="ES384")
    with pytest.raises(SignatureError, match="not an unencrypted PEM private key"):
        sign_files(FILES, key_pem_or_secret=keys["RS"][1], algorithm="RS256")


def test_certificate_and_private_key_also_verify(keys: Keys) -> None:
    private = serialization.load_pem_private_key(keys["ES256"][0], password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bundle signer")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2024, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2034, 1, 1, tzinfo=UTC))
        .sign(private, hashes.SHA256())
    )
    bundle = signed(keys, "ES256")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    assert verify_files(bundle, key=cert_pem) == sorted(FILES)
    assert verify_files(bundle, key=keys["ES256"][0]) == sorted(FILES)


def test_key_files_are_read_verbatim(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s3cret\n")
    assert load_signing_key(secret) == load_verification_key(secret) == b"s3cret\n"
    with pytest.raises(SignatureError) as caught:
        load_verification_key(tmp_path / "absent.pem")
    assert caught.value.file == str(tmp_path / "absent.pem")


# -- recorded OPA output and OPA's canonical hashing ------------------------


@pytest.mark.parametrize("algorithm", ["rs256", "es256"])
def test_bundle_recorded_from_opa_build_verifies(algorithm: str) -> None:
    # Recorded with OPA 1.22.4: `opa build -b . --ignore cases --signing-key KEY
    # --signing-alg RS256|ES256 -o data/opa_build/<alg>.tar.gz`; public keys beside them.
    files = read_archive(DATA / "opa_build" / f"{algorithm}.tar.gz")
    key = load_verification_key(DATA / "opa_build" / f"{algorithm}.pub.pem")
    assert verify_files(files, key=key, key_id="default") == [
        ".manifest",
        "data.json",
        "regate/policy.rego",
    ]
    files["data.json"] = files["data.json"].replace(b"1024", b"4096")
    assert refused(files, key).startswith("data.json: digest mismatch")


def canonical_cases() -> list[dict[str, str]]:
    cases: list[dict[str, str]] = yaml.safe_load((DATA / "canonical_cases.yaml").read_text("utf-8"))
    return cases


def case_content(case: Mapping[str, str]) -> bytes:
    if "content_base64" in case:
        return base64.b64decode(case["content_base64"])
    return case["content"].encode("utf-8")


@pytest.mark.parametrize("case", canonical_cases(), ids=lambda c: c["note"])
def test_structured_files_hash_over_opa_canonical_json(case: Mapping[str, str]) -> None:
    content = case_content(case)
    assert canonical_json(content) == case["canonical"].encode("utf-8")
    assert (
        file_hash(case["file"], content) == hashlib.sha256(case["canonical"].encode()).hexdigest()
    )


@pytest.mark.parametrize(
    "content",
    [b"a: .inf", b"a: !!binary aGk=", b"a: !custom 1", b"1.5: x", b"? [1]\n: x", b"a: [unclosed"],
)
def test_structured_files_opa_could_not_hash_the_same_way_are_refused(content: bytes) -> None:
    with pytest.raises(SignatureError, match=r"data\.yaml: cannot hash"):
        file_hash("data.yaml", content)


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    with pytest.raises(SignatureError, match="expands too far through aliases"):
        file_hash("data.yaml", "\n".join(lines).encode())
