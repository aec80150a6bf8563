"""``regate check``: the shipped bundles pass; broken bundles are refused naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import DEFAULT_BUNDLE, STRICT_BUNDLE, Regate, write_files

MANIFEST = '{"revision": "t-1", "roots": ["regate"]}\n'
HEADER = "package regate\n\nimport rego.v1\n\n"

# (name, files, file the problem must name, its line, words the message must hold)
BROKEN = [
    (
        "syntax_error",
        {
            ".manifest": MANIFEST,
            "regate/policy.rego": HEADER + 'decision := {"action": "allow"}}\n',
        },
        "regate/policy.rego",
        5,
        "compile error",
    ),
    (
        "http_send",
        {
            ".manifest": MANIFEST,
            "regate/policy.rego": HEADER
            + 'decision := {"action": "allow"}\n\n'
            + 'leak := http.send({"method": "GET", "url": "http://127.0.0.1:1/"})\n',
        },
        "regate/policy.rego",
        7,
        "http.send is forbidden",
    ),
    (
        "net_lookup_ip_addr",
        {
            ".manifest": MANIFEST,
            "regate/policy.rego": HEADER
            + 'decision := {"action": "allow"}\n\n'
            + "addrs := net.lookup_ip_addr(input.model)\n",
        },
        "regate/policy.rego",
        7,
        "net.lookup_ip_addr is forbidden",
    ),
    (
        "outside_roots",
        {
            ".manifest": MANIFEST,
            "regate/policy.rego": HEADER + 'decision := {"action": "allow"}\n',
            "other/policy.rego": "# METADATA\n# title: not under the roots\npackage other\n\nx := 1\n",
        },
        "other/policy.rego",
        3,
        "outside the manifest roots",
    ),
]


def broken_bundle(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    return write_files(tmp_path / name, files)


def test_shipped_bundles_are_clean(regate: Regate) -> None:
    result = regate("check", DEFAULT_BUNDLE, STRICT_BUNDLE, "--format", "json")
    assert result.code == 0, result.out
    report = result.json()
    assert report["ok"] is True
    by_name = {Path(b["bundle"]).name: b for b in report["bundles"]}
    assert set(by_name) == {"default", "strict"}
    for summary in by_name.values():
        assert summary["problems"] == []
        assert summary["entrypoint"] == "regate/decision"
        assert summary["detectors"] > 0 and summary["cases"] > 0


def test_shipped_bundles_are_clean_as_a_process(regate_process: Regate) -> None:
    result = regate_process("check", "policy-bundles/default", "policy-bundles/strict")
    assert result.code == 0, result.out + result.err
    assert [line.split()[:2] for line in result.out.splitlines()] == [
        ["ok", "policy-bundles/default"],
        ["ok", "policy-bundles/strict"],
    ]


@pytest.mark.parametrize(
    ("name", "files", "file", "line", "words"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_bundle_is_refused_naming_file_and_line(
    regate: Regate,
    tmp_path: Path,
    name: str,
    files: dict[str, str],
    file: str,
    line: int,
    words: str,
) -> None:
    bundle = broken_bundle(tmp_path, name, files)

    pretty = regate("check", bundle)
    assert pretty.code == 1
    assert f"FAILED {bundle}" in pretty.out
    assert f"{bundle / file}:{line}: " in pretty.out
    assert words in pretty.out

    as_json = regate("check", bundle, "--format", "json")
    assert as_json.code == 1
    report = as_json.json()
    assert report["ok"] is False
    [problem] = report["bundles"][0]["problems"]
    assert problem["file"] == str(bundle / file)
    assert problem["line"] == line
    assert problem["code"] == "bundle_error"
    assert words in problem["message"]


def test_one_broken_bundle_fails_the_run_but_the_others_are_reported(
    regate: Regate, tmp_path: Path
) -> None:
    name, files, file, line, _ = BROKEN[1]
    bundle = broken_bundle(tmp_path, name, files)
    result = regate("check", DEFAULT_BUNDLE, bundle, "--format", "json")
    assert result.code == 1
    first, second = result.json()["bundles"]
    assert first["ok"] is True and second["ok"] is False
    assert (second["problems"][0]["file"], second["problems"][0]["line"]) == (
        str(bundle / file),
        line,
    )


def test_broken_bundle_is_refused_as_a_process(regate_process: Regate, tmp_path: Path) -> None:
    name, files, file, line, words = BROKEN[1]
    bundle = broken_bundle(tmp_path, name, files)
    result = regate_process("check", bundle)
    assert result.code == 1
    assert f"{bundle / file}:{line}: " in result.out and words in result.out


def test_case_file_problem_names_file_and_line(regate: Regate, tmp_path: Path) -> None:
    bundle = write_files(
        tmp_path / "cases_bundle",
        {
            ".manifest": MANIFEST,
            "regate/policy.rego": HEADER + 'decision := {"action": "allow"}\n',
            "cases/cases.yaml": (
                "cases:\n"
                "  - note: fine\n"
                "    request: {model: m, messages: [{role: user, content: hi}]}\n"
                "    want: {action: allow}\n"
                "  - note: wrong action\n"
                "    request: {model: m, messages: [{role: user, content: hi}]}\n"
                "    want: {action: permit}\n"
            ),
        },
    )
    result = regate("check", bundle, "--format", "json")
    assert result.code == 1
    [problem] = result.json()["bundles"][0]["problems"]
    assert problem["file"] == str(bundle / "cases" / "cases.yaml")
    assert problem["line"] == 5
    assert "want.action" in problem["message"]
