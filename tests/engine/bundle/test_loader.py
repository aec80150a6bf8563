"""Bundle loading is checking: manifest, roots, data placement, compile, capabilities."""

from __future__ import annotations

import pytest

from engine.bundle.loader import load_bundle
from engine.errors import BundleError
from tests.conftest import BundleFactory

MANIFEST = {"revision": "r1", "roots": ["regate"]}
ALLOW = 'package regate\n\ndecision := {"action": "allow"}\n'


def test_minimal_bundle_loads_with_defaults(make_bundle: BundleFactory) -> None:
    bundle = load_bundle(make_bundle({".manifest": MANIFEST, "policy.rego": ALLOW}))
    assert bundle.revision == "r1"
    assert bundle.query == "data.regate.decision"
    assert bundle.digest.startswith("sha256:") and len(bundle.digest) == 71
    assert len(bundle.detectors) == 0


def test_entrypoint_comes_from_manifest_metadata(make_bundle: BundleFactory) -> None:
    manifest = {"roots": ["acme"], "metadata": {"regate": {"entrypoint": "acme/gateway/verdict"}}}
    rego = 'package acme.gateway\n\nverdict := {"action": "allow"}\n'
    assert (
        load_bundle(make_bundle({".manifest": manifest, "p.rego": rego})).query
        == "data.acme.gateway.verdict"
    )


def test_data_files_are_placed_by_directory(make_bundle: BundleFactory) -> None:
    bundle = load_bundle(
        make_bundle(
            {
                ".manifest": MANIFEST,
                "policy.rego": ALLOW,
                "data.json": {"regate": {"policy": {"a": 1}}},
                "regate/models/data.yaml": "allowed: [gpt-4o]\n",
            }
        )
    )
    assert bundle.data["regate"]["policy"] == {"a": 1}
    assert bundle.data["regate"]["models"] == {"allowed": ["gpt-4o"]}


def test_syntax_error_names_file_and_line(make_bundle: BundleFactory) -> None:
    path = make_bundle({".manifest": MANIFEST, "policy.rego": "package regate\n\ndecision := {\n"})
    with pytest.raises(BundleError) as err:
        load_bundle(path)
    assert err.value.file is not None and err.value.file.endswith("policy.rego")
    assert err.value.line == 4 or err.value.line == 3


@pytest.mark.parametrize("builtin", ["http.send", "net.lookup_ip_addr", "opa.runtime"])
def test_forbidden_builtins_are_refused_with_line(make_bundle: BundleFactory, builtin: str) -> None:
    arg = "{}" if builtin == "http.send" else ('"x"' if builtin != "opa.runtime" else "")
    rego = f"package regate\n\nimport rego.v1\n\nleak := {builtin}({arg}) if input.x\n"
    with pytest.raises(BundleError, match=f"{builtin} is forbidden") as err:
        load_bundle(make_bundle({".manifest": MANIFEST, "policy.rego": rego}))
    assert err.value.line == 5


def test_builtin_the_embedded_engine_lacks_is_refused(make_bundle: BundleFactory) -> None:
    rego = 'package regate\n\nx := crypto.sha256("a")\n'
    with pytest.raises(BundleError, match="not supported"):
        load_bundle(make_bundle({".manifest": MANIFEST, "policy.rego": rego}))


def test_user_functions_and_imports_are_not_builtins(make_bundle: BundleFactory) -> None:
    rego = (
        "package regate\n\nimport rego.v1\nimport data.regate.helpers as h\n\n"
        'double(x) := x * 2\n\ndecision := {"action": "allow"} if { double(1) == 2; h.one(1) == 1 }\n'
    )
    helpers = "package regate.helpers\n\none(x) := x\n"
    bundle = load_bundle(
        make_bundle({".manifest": MANIFEST, "policy.rego": rego, "helpers.rego": helpers})
    )
    assert len(bundle.modules) == 2


def test_package_outside_roots_is_refused(make_bundle: BundleFactory) -> None:
    with pytest.raises(BundleError, match="outside the manifest roots") as err:
        load_bundle(
            make_bundle(
                {
                    ".manifest": MANIFEST,
                    "policy.rego": ALLOW,
                    "other.rego": "\n\npackage elsewhere\n",
                }
            )
        )
    assert err.value.file is not None and err.value.file.endswith("other.rego")
    assert err.value.line == 3


def test_data_outside_roots_is_refused(make_bundle: BundleFactory) -> None:
    with pytest.raises(BundleError, match="outside the manifest roots"):
        load_bundle(
            make_bundle({".manifest": MANIFEST, "policy.rego": ALLOW, "data.json": {"other": 1}})
        )


@pytest.mark.parametrize("roots", [["a", "a/b"], ["", "x"]])
def test_overlapping_roots_are_refused(make_bundle: BundleFactory, roots: list[str]) -> None:
    with pytest.raises(BundleError, match="overlap"):
        load_bundle(make_bundle({".manifest": {"roots": roots}, "policy.rego": ALLOW}))


def test_invalid_request_schema_is_refused(make_bundle: BundleFactory) -> None:
    data = {"regate": {"request_schemas": {"broken": {"type": "no-such-type"}}}}
    with pytest.raises(BundleError, match="broken"):
        load_bundle(make_bundle({".manifest": MANIFEST, "policy.rego": ALLOW, "data.json": data}))


def test_library_is_added_when_imported(make_bundle: BundleFactory) -> None:
    rego = 'package regate\n\nimport data.regate.lib.decision as d\n\ndecision := {"action": "allow"}\n'
    bundle = load_bundle(make_bundle({".manifest": MANIFEST, "policy.rego": rego}))
    library = [m for m in bundle.modules if m.from_library]
    assert library and all(m.package.startswith("regate.lib") for m in library)
    assert not any(m.is_test for m in library)


def test_missing_bundle_is_a_bundle_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nope")
