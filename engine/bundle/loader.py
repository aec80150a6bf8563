"""Load a policy bundle (directory or ``.tar.gz``) and check it completely.

Loading is checking: structure, manifest, roots, Rego compilation,
capabilities, request schemas and detectors. A bundle that loads is one the
gateway may activate; any problem raises ``BundleError`` naming file and line.
The Rego library in ``rules/`` is added to bundles that use ``data.regate.lib``
and do not carry it themselves, the way a standard library is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

from engine.bundle.archive import read_archive, read_directory
from engine.bundle.capabilities import check_capabilities
from engine.detectors import DetectorSet, compile_detectors
from engine.errors import BundleError, SignatureError
from engine.evaluators.embedded import EmbeddedEvaluator
from engine.resources import data_dir

DEFAULT_ENTRYPOINT = "regate/decision"
LIBRARY_PREFIX = "regate/lib"
DATA_FILES = ("data.json", "data.yaml")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.\[\]\"]*)", re.MULTILINE)


@dataclass(frozen=True)
class Manifest:
    revision: str = ""
    roots: tuple[str, ...] = ("",)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def entrypoint(self) -> str:
        regate = self.metadata.get("regate", {})
        value = regate.get("entrypoint", DEFAULT_ENTRYPOINT) if isinstance(regate, dict) else None
        return str(value or DEFAULT_ENTRYPOINT).strip("/")

    def covers(self, path: str) -> bool:
        """Whether a slash-separated data path lies under one of the roots."""
        return any(root == "" or path == root or path.startswith(root + "/") for root in self.roots)


@dataclass(frozen=True)
class Module:
    path: str
    text: str
    package: str
    package_line: int
    from_library: bool = False

    @property
    def is_test(self) -> bool:
        return self.path.endswith("_test.rego")


@dataclass(frozen=True)
class Bundle:
    """A checked bundle, with its compiled detectors and request schemas."""

    source: str
    files: Mapping[str, bytes]
    manifest: Manifest
    modules: tuple[Module, ...]
    data: Mapping[str, Any]
    digest: str
    detectors: DetectorSet
    request_schemas: Mapping[str, Any]
    source_dir: Path | None = None
    verified: bool = False

    @property
    def entrypoint(self) -> str:
        return self.manifest.entrypoint

    @property
    def query(self) -> str:
        """The decision rule as a query, e.g. ``data.regate.decision``."""
        return "data." + self.entrypoint.replace("/", ".")

    @property
    def revision(self) -> str:
        return self.manifest.revision

    def policy_modules(self, *, tests: bool = False) -> list[tuple[str, str]]:
        """``(path, text)`` of the Rego modules to load into an engine."""
        return [(m.path, m.text) for m in self.modules if tests or not m.is_test]


def _where(source: str, path: str) -> str:
    return f"{source}/{path}" if source else path


def _parse_manifest(raw: bytes | None, source: str) -> Manifest:
    if raw is None:
        return Manifest()
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BundleError(
            f"invalid JSON in .manifest: {exc}", file=_where(source, ".manifest")
        ) from None
    if not isinstance(value, dict):
        raise BundleError(".manifest must be a JSON object", file=_where(source, ".manifest"))
    roots = value.get("roots", [""])
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        raise BundleError(
            ".manifest roots must be a list of strings", file=_where(source, ".manifest")
        )
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BundleError(".manifest metadata must be an object", file=_where(source, ".manifest"))
    norm = tuple(r.strip("/") for r in roots)
    for i, a in enumerate(norm):
        for b in norm[i + 1 :]:
            if a == b or a == "" or b == "" or a.startswith(b + "/") or b.startswith(a + "/"):
                raise BundleError(
                    f"manifest roots overlap: {a!r} and {b!r}", file=_where(source, ".manifest")
                )
    return Manifest(str(value.get("revision", "")), norm, metadata)


def _parse_data_file(path: str, raw: bytes, source: str) -> Any:
    try:
        if path.endswith(".json"):
            return json.loads(raw)
        return yaml.safe_load(raw.decode("utf-8"))
    except (ValueError, yaml.YAMLError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        line = line + 1 if isinstance(line, int) else getattr(exc, "lineno", None)
        raise BundleError(
            f"cannot parse data file: {exc}", file=_where(source, path), line=line
        ) from None


def _merge(target: dict[str, Any], value: Mapping[str, Any], where: str) -> None:
    for key, item in value.items():
        if key in target and isinstance(target[key], dict) and isinstance(item, dict):
            _merge(target[key], item, where)
        elif key in target:
            raise BundleError(f"data key {key!r} is defined twice", file=where)
        else:
            target[key] = item


def _place_data(files: Mapping[str, bytes], manifest: Manifest, source: str) -> dict[str, Any]:
    """Merge each ``data.json``/``data.yaml`` at the data path named by its directory."""
    data: dict[str, Any] = {}
    for path in sorted(files):
        if path.rsplit("/", 1)[-1] not in DATA_FILES:
            continue
        value = _parse_data_file(path, files[path], source)
        prefix = [p for p in path.rsplit("/", 1)[0].split("/") if p] if "/" in path else []
        if not prefix and not isinstance(value, dict):
            raise BundleError("a root data file must hold a JSON object", file=_where(source, path))
        for key in value if not prefix else {prefix[-1]: value}:
            full = "/".join([*prefix[:-1], key]) if prefix else key
            if not manifest.covers(full):
                raise BundleError(
                    f"data path {full!r} is outside the manifest roots {list(manifest.roots)}",
                    file=_where(source, path),
                )
        nested: Any = value
        for key in reversed(prefix):
            nested = {key: nested}
        _merge(data, nested, _where(source, path))
    return data


def _parse_module(path: str, raw: bytes, source: str, *, from_library: bool = False) -> Module:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("policy file is not UTF-8", file=_where(source, path)) from None
    match = _PACKAGE.search(text)
    if match is None:
        raise BundleError(
            "policy file has no package declaration", file=_where(source, path), line=1
        )
    line = text.count("\n", 0, match.start(1)) + 1
    package = match.group(1).replace('["', ".").replace('"]', "")
    return Module(path, text, package, line, from_library)


def _library_modules() -> list[Module]:
    root = data_dir("rules")
    return [
        _parse_module(p.relative_to(root).as_posix(), p.read_bytes(), str(root), from_library=True)
        for p in sorted(root.rglob("*.rego"))
        if not p.name.endswith("_test.rego")
    ]


def _compile_schemas(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    raw = (
        data.get("regate", {}).get("request_schemas", {})
        if isinstance(data.get("regate"), dict)
        else {}
    )
    if not isinstance(raw, dict):
        raise BundleError(
            "data.regate.request_schemas must be an object of JSON Schemas", file=source
        )
    compiled = {}
    for name, schema in sorted(raw.items()):
        try:
            compiled[name] = jsonschema_rs.Draft202012Validator(schema)
        except Exception as exc:  # jsonschema_rs raises ValidationError/ValueError on bad schemas
            raise BundleError(f"request schema {name!r} is invalid: {exc}", file=source) from None
    return compiled


def _module_where(modules: list[Module], source: str, path: str) -> str:
    """Where a module the engine names lives: the bundle, or the ``rules/`` library."""
    module = next((m for m in modules if m.path == path), None)
    library = module is not None and module.from_library
    return _where(str(data_dir("rules")) if library else source, path)


def bundle_digest(files: Mapping[str, bytes]) -> str:
    """``sha256:`` over the sorted file list and each file's SHA-256 (signatures excluded)."""
    h = hashlib.sha256()
    for path in sorted(files):
        if path != ".signatures.json":
            h.update(f"{path}\0{hashlib.sha256(files[path]).hexdigest()}\n".encode())
    return "sha256:" + h.hexdigest()


def load_bundle(
    source: str | Path,
    *,
    verification_key: bytes | None = None,
    verification_alg: str | None = None,
    scope: str | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Bundle:
    """Read, verify (when a key is given) and check a bundle.

    ``files`` lets a caller that already holds the bytes (the bundle service
    client) skip reading ``source`` again.
    """
    source_str = str(source)
    path = Path(source)
    source_dir = None
    if files is None:
        if path.is_dir():
            files = read_directory(path)
            source_dir = path
        elif path.is_file():
            files = read_archive(path)
        else:
            raise BundleError(
                "bundle not found (expected a directory or a .tar.gz file)", file=source_str
            )
    verified = False
    if verification_key is not None:
        from engine.bundle.signing import verify_files

        try:
            verify_files(files, key=verification_key, algorithm=verification_alg, scope=scope)
        except SignatureError as exc:  # the message names the file inside the bundle
            raise SignatureError(exc.message, file=exc.file or source_str, line=exc.line) from None
        verified = True

    manifest = _parse_manifest(files.get(".manifest"), source_str)
    modules = [
        _parse_module(p, raw, source_str) for p, raw in sorted(files.items()) if p.endswith(".rego")
    ]
    for module in modules:
        if not manifest.covers(module.package.replace(".", "/")):
            raise BundleError(
                f"package {module.package} is outside the manifest roots {list(manifest.roots)}",
                file=_where(source_str, module.path),
                line=module.package_line,
            )
    carries_library = any(m.package.startswith("regate.lib") for m in modules)
    if not carries_library and any("data.regate.lib" in m.text for m in modules):
        if not manifest.covers(LIBRARY_PREFIX):
            raise BundleError(
                f"policies import data.regate.lib but the manifest roots do not cover {LIBRARY_PREFIX}",
                file=_where(source_str, ".manifest"),
            )
        modules.extend(_library_modules())
    data = _place_data(files, manifest, source_str)

    try:
        evaluator = EmbeddedEvaluator([(m.path, m.text) for m in modules], data)
    except BundleError as exc:
        where = _module_where(modules, source_str, exc.file) if exc.file else source_str
        raise BundleError(exc.message, file=where, line=exc.line) from None
    violations = check_capabilities(evaluator.ast())
    if violations:
        first = violations[0]
        where = _module_where(modules, source_str, first.file)
        raise BundleError(first.message(), file=where, line=first.line)

    regate_data = data.get("regate", {}) if isinstance(data.get("regate"), dict) else {}
    try:
        detectors = compile_detectors(regate_data.get("detectors", []))
    except BundleError as exc:
        raise BundleError(
            exc.message, file=exc.file or _where(source_str, "data.json"), line=exc.line
        ) from None
    schemas = _compile_schemas(data, _where(source_str, "data.json"))
    return Bundle(
        source=source_str,
        files=dict(files),
        manifest=manifest,
        modules=tuple(modules),
        data=data,
        digest=bundle_digest(files),
        detectors=detectors,
        request_schemas=schemas,
        source_dir=source_dir,
        verified=verified,
    )
