"""Sign and verify bundle files exactly as OPA does, through ``.signatures.json``.

``.signatures.json`` is ``{"signatures": ["<compact JWS>"]}`` with exactly one
token whose payload is ``{"files": [{"name", "hash", "algorithm"}], "keyid"?,
"scope"?}``. Each file's hash is SHA-256 over its bytes, except ``data.json``,
``data.yaml``, ``data.yml`` and ``.manifest``, whose hash is over their
canonical JSON (``engine.bundle.canonical``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from engine.bundle.canonical import canonical_json
from engine.errors import SignatureError

SIGNATURES_FILE = ".signatures.json"
DEFAULT_KEY_ID = "default"  # what `opa build --signing-key` puts in the token
DEFAULT_PLUGIN = "_default"  # OPA's built-in signer/verifier, named in .signatures.json
HASH_ALGORITHM = "SHA-256"
MAX_KEY_BYTES = 1024 * 1024

_STRUCTURED = frozenset({"data.json", "data.yaml", "data.yml", ".manifest"})
_FILE_HASHES = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-224": "sha224",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
    "SHA-512-224": "sha512_224",
    "SHA-512-256": "sha512_256",
}
_JWS_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ES256": ec.SECP256R1,
    "ES384": ec.SECP384R1,
    "ES512": ec.SECP521R1,
}
ALGORITHMS = tuple(f"{family}{bits}" for family in ("RS", "PS", "ES", "HS") for bits in _JWS_HASHES)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_PEM_TYPE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def file_hash(name: str, content: bytes, algorithm: str = HASH_ALGORITHM) -> str:
    """Hex digest of one bundle file, as OPA computes it for ``.signatures.json``.

    ``data.json``, ``data.yaml``, ``data.yml`` and ``.manifest`` (by base
    name) are hashed over their canonical JSON, so whitespace and key order
    do not matter; every other file over its raw bytes.
    """
    hash_name = _FILE_HASHES.get(algorithm)
    if hash_name is None:
        raise SignatureError(f"{name}: unsupported hashing algorithm {algorithm!r}")
    digest = hashlib.new(hash_name)
    if _basename(name) in _STRUCTURED:
        try:
            digest.update(canonical_json(content))
        except ValueError as exc:
            raise SignatureError(f"{name}: cannot hash structured file: {exc}") from None
    else:
        digest.update(content)
    return digest.hexdigest()


def _signed_names(files: Mapping[str, bytes]) -> tuple[str | None, list[str]]:
    """The signatures file (if any) and the names it must cover."""
    found = sorted(name for name in files if _basename(name) == SIGNATURES_FILE)
    if len(found) > 1:
        raise SignatureError(f"{', '.join(found)}: more than one signatures file in the bundle")
    signed = sorted(name for name in files if _basename(name) != SIGNATURES_FILE)
    return (found[0] if found else None), signed


def sign_files(
    files: Mapping[str, bytes],
    *,
    key_pem_or_secret: bytes,
    algorithm: str = "RS256",
    key_id: str | None = DEFAULT_KEY_ID,
    scope: str | None = None,
) -> bytes:
    """Sign every file but ``.signatures.json``; return the new ``.signatures.json`` content.

    ``key_pem_or_secret`` is a PEM private key (RS*, PS*, ES*) or an HMAC
    secret (HS*), used byte for byte as OPA does. ``key_id`` goes into the JWS
    ``kid`` header and the ``keyid`` claim (OPA's default is ``"default"``;
    ``None`` leaves both out).

    >>> sig = sign_files({"x/p.rego": b"package x"}, key_pem_or_secret=b"s", algorithm="HS256")
    >>> verify_files({"x/p.rego": b"package x", ".signatures.json": sig}, key=b"s")
    ['x/p.rego']
    """
    _check_algorithm(algorithm)
    existing, names = _signed_names(files)
    if existing is not None and existing != SIGNATURES_FILE:
        raise SignatureError(f"{existing}: signatures file must be at the bundle root")
    entries = [
        {"name": name, "hash": file_hash(name, files[name]), "algorithm": HASH_ALGORITHM}
        for name in names
    ]
    header: dict[str, str] = {"alg": algorithm}
    payload: dict[str, Any] = {"files": entries}
    if key_id:
        header["kid"] = key_id
        payload["keyid"] = key_id
    if scope:
        payload["scope"] = scope
    header["typ"] = "JWT"
    signing_input = _b64(_json(header)) + "." + _b64(_json(payload))
    signature = _sign(algorithm, key_pem_or_secret, signing_input.encode("ascii"))
    token = signing_input + "." + _b64(signature)
    document = {"signatures": [token], "plugin": DEFAULT_PLUGIN}
    return json.dumps(document, indent=1).encode("utf-8")


def verify_files(
    files: Mapping[str, bytes],
    *,
    key: bytes,
    algorithm: str | None = None,
    scope: str | None = None,
    key_id: str | None = None,
) -> list[str]:
    """Check ``.signatures.json`` against ``key`` and every file; return the verified names.

    ``key`` is a PEM public key, certificate or private key, or an HMAC
    secret. Without ``algorithm`` the token's own ``alg`` is used, but only
    if it fits the key (an HS* token needs a non-PEM secret, so a public key
    can never serve as an HMAC secret). ``scope`` must equal the signed scope
    (both may be absent), as in OPA. With ``key_id``, a token naming another
    key is refused. Any failure raises ``SignatureError`` naming the file.
    """
    sig_name, names = _signed_names(files)
    if sig_name is None:
        raise SignatureError(f"{SIGNATURES_FILE}: bundle is not signed (file missing)")
    header, payload = _verify_token(_one_token(sig_name, files[sig_name]), sig_name, key, algorithm)
    token_kid = header.get("kid") or payload.get("keyid") or None
    if key_id is not None and token_kid is not None and token_kid != key_id:
        raise SignatureError(f"{sig_name}: signed with key id {token_kid!r}, expected {key_id!r}")
    signed_scope = payload.get("scope") or ""
    if not isinstance(signed_scope, str) or signed_scope != (scope or ""):
        raise SignatureError(
            f"{sig_name}: scope mismatch (signed {signed_scope!r}, expected {scope or ''!r})"
        )
    listed = _listed_files(payload, sig_name)
    for name in names:
        entry = listed.pop(name, None)
        if entry is None:
            raise SignatureError(f"{name}: file is not listed in {sig_name}")
        algorithm_name = entry.get("algorithm")
        if not isinstance(algorithm_name, str) or not algorithm_name:
            raise SignatureError(f"{name}: no hashing algorithm given in {sig_name}")
        want = str(entry.get("hash", "")).lower()
        got = file_hash(name, files[name], algorithm_name)
        if want != got:  # digests are public; no constant-time compare needed
            raise SignatureError(f"{name}: digest mismatch (signed {want}, actual {got})")
    if listed:
        raise SignatureError(
            f"{', '.join(sorted(listed))}: listed in {sig_name} but missing from the bundle"
        )
    return names


def _one_token(sig_name: str, raw: bytes) -> str:
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise SignatureError(f"{sig_name}: invalid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise SignatureError(f"{sig_name}: expected a JSON object")
    if document.get("plugin", DEFAULT_PLUGIN) not in ("", DEFAULT_PLUGIN):
        raise SignatureError(f"{sig_name}: signing plugin {document['plugin']!r} is not supported")
    tokens = document.get("signatures") or []
    if not isinstance(tokens, list) or len(tokens) != 1 or not isinstance(tokens[0], str):
        raise SignatureError(f"{sig_name}: expected exactly one signature (JWS string)")
    return tokens[0]


def _listed_files(payload: Mapping[str, Any], sig_name: str) -> dict[str, Mapping[str, Any]]:
    entries = payload.get("files")
    if not isinstance(entries, list):
        raise SignatureError(f"{sig_name}: signature payload has no file list")
    listed: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise SignatureError(f"{sig_name}: malformed file entry in the signature payload")
        listed[entry["name"]] = entry  # a later entry wins, as in OPA
    return listed


def _verify_token(
    token: str, sig_name: str, key: bytes, algorithm: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    parts = token.split(".")
    if len(parts) != 3:
        raise SignatureError(f"{sig_name}: signature is not a compact JWS")
    header = _decode_json_part(parts[0], sig_name, "header")
    payload = _decode_json_part(parts[1], sig_name, "payload")
    token_alg = header.get("alg")
    if algorithm is None:
        if not isinstance(token_alg, str):
            raise SignatureError(f"{sig_name}: token names no algorithm")
        algorithm = token_alg
        if algorithm.startswith("HS") == _is_pem(key):
            raise SignatureError(f"{sig_name}: token algorithm {algorithm} does not fit the key")
    elif token_alg != algorithm:
        raise SignatureError(f"{sig_name}: token algorithm {token_alg!r}, expected {algorithm}")
    _check_algorithm(algorithm, where=f"{sig_name}: ")
    signing_input = (parts[0] + "." + parts[1]).encode("ascii")
    if not _verify(algorithm, key, signing_input, _b64decode(parts[2], sig_name)):
        raise SignatureError(f"{sig_name}: signature verification failed ({algorithm})")
    return header, payload


def _decode_json_part(part: str, sig_name: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part, sig_name))
    except ValueError:
        raise SignatureError(f"{sig_name}: token {what} is not JSON") from None
    if not isinstance(value, dict):
        raise SignatureError(f"{sig_name}: token {what} is not a JSON object")
    return value


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str, sig_name: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise SignatureError(f"{sig_name}: token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignatureError(f"{sig_name}: token is not base64url") from None


def _check_algorithm(algorithm: str, *, where: str = "") -> None:
    if algorithm not in ALGORITHMS:
        raise SignatureError(
            f"{where}unsupported signing algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})"
        )


def _is_pem(key: bytes) -> bool:
    return _PEM_TYPE.search(key) is not None


def _sign(algorithm: str, key: bytes, data: bytes) -> bytes:
    family, digest = algorithm[:2], _JWS_HASHES[algorithm[2:]]()
    if family == "HS":
        if not key:
            raise SignatureError("HMAC signing secret is empty")
        return hmac.new(key, data, digest.name).digest()
    private = _private_key(key)
    if family in ("RS", "PS"):
        if not isinstance(private, rsa.RSAPrivateKey):
            raise SignatureError(f"{algorithm} needs an RSA private key")
        if private.key_size < 2048:
            raise SignatureError(f"{algorithm} key is too small ({private.key_size} bits < 2048)")
        return private.sign(data, _rsa_padding(family, digest, signing=True), digest)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
        private.curve, _CURVES[algorithm]
    ):
        raise SignatureError(f"{algorithm} needs an EC private key on {_CURVES[algorithm].name}")
    r, s = decode_dss_signature(private.sign(data, ec.ECDSA(digest)))
    size = (private.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _verify(algorithm: str, key: bytes, data: bytes, signature: bytes) -> bool:
    family, digest = algorithm[:2], _JWS_HASHES[algorithm[2:]]()
    if family == "HS":
        return hmac.compare_digest(hmac.new(key, data, digest.name).digest(), signature)
    public = _public_key(key)
    try:
        if family in ("RS", "PS"):
            if not isinstance(public, rsa.RSAPublicKey):
                raise SignatureError(f"{algorithm} needs an RSA public key")
            public.verify(signature, data, _rsa_padding(family, digest, signing=False), digest)
            return True
        if not isinstance(public, ec.EllipticCurvePublicKey) or not isinstance(
            public.curve, _CURVES[algorithm]
        ):
            raise SignatureError(f"{algorithm} needs an EC public key on {_CURVES[algorithm].name}")
        size = (public.curve.key_size + 7) // 8
        if len(signature) != 2 * size:
            return False
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False


def _rsa_padding(
    family: str, digest: hashes.HashAlgorithm, *, signing: bool
) -> padding.AsymmetricPadding:
    if family == "RS":
        return padding.PKCS1v15()
    salt = padding.PSS.DIGEST_LENGTH if signing else padding.PSS.AUTO
    return padding.PSS(mgf=padding.MGF1(digest), salt_length=salt)


def _private_key(pem: bytes) -> Any:
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError("signing key is not an unencrypted PEM private key") from None


def _public_key(pem: bytes) -> Any:
    """A public key from a PEM public key, certificate or private key (OPA takes all three)."""
    match = _PEM_TYPE.search(pem)
    kind = match.group(1) if match else b""
    try:
        if kind == b"CERTIFICATE":
            return x509.load_pem_x509_certificate(pem).public_key()
        if kind.endswith(b"PRIVATE KEY"):
            return serialization.load_pem_private_key(pem, password=None).public_key()
        return serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SignatureError("verification key is not a PEM public key or certificate") from None


def _read_key(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise SignatureError(f"cannot read {what}: {exc.strerror}", file=str(path)) from None
    if not data or len(data) > MAX_KEY_BYTES:
        raise SignatureError(f"{what} file is empty or too large", file=str(path))
    return data


def load_signing_key(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a signing key file: a PEM private key or an HMAC secret, used as-is like OPA."""
    return _read_key(path, "signing key")


def load_verification_key(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a verification key file: PEM public key, certificate, or HMAC secret."""
    return _read_key(path, "verification key")
