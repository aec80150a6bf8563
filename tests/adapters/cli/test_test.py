"""``regate test``: the shipped bundles pass with coverage; failures reach every report format."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from .support import DEFAULT_BUNDLE, STRICT_BUNDLE, Regate, write_files

POLICY = """package regate

import rego.v1

decision := {"action": "allow"} if {
	input.model != "forbidden"
} else := {"action": "deny", "reasons": [{"code": "model.forbidden", "message": "not this one"}]}
"""

REGO_TESTS = """package regate_test

import rego.v1

import data.regate

test_allows_a_model if {
	regate.decision.action == "allow" with input as {"model": "gpt-4o-mini"}
}

test_denies_every_model if {
	regate.decision.action == "deny" with input as {"model": "gpt-4o-mini"}
}
"""
FAILING_TEST_LINE = 11

CASES = """cases:
  - note: plain request is allowed
    request: {model: gpt-4o-mini, messages: [{role: user, content: hi}]}
    want: {action: allow, reasons: []}

  - note: plain request is wrongly expected to be denied
    request: {model: gpt-4o-mini, messages: [{role: user, content: hi}]}
    want: {action: deny}
"""
FAILING_CASE_LINE = 6


def junit(text: str) -> ET.Element:
    """Parse a report this suite's own ``regate test`` run just wrote."""
    return ET.fromstring(text)  # noqa: S314 - our own output, not untrusted input


@pytest.fixture
def failing_bundle(tmp_path: Path) -> Path:
    """Two passing and two failing tests: one Rego ``test_`` rule, one YAML case."""
    return write_files(
        tmp_path / "failing",
        {
            "regate/decision.rego": POLICY,
            "regate/decision_test.rego": REGO_TESTS,
            "cases/cases.yaml": CASES,
        },
    )


TWO_RULES = """package regate

import rego.v1

decision := {"action": "allow"} if {
	input.model != "forbidden"
}

decision := {"action": "deny"} if {
	input.model == "forbidden"
}
"""


@pytest.fixture
def partly_covered_bundle(tmp_path: Path) -> Path:
    """A passing test that never reaches the second rule, so coverage is below 100%."""
    only_allow = REGO_TESTS.split("test_denies_every_model")[0]
    files = {"regate/decision.rego": TWO_RULES, "regate/decision_test.rego": only_allow}
    return write_files(tmp_path / "partial", files)


def test_shipped_bundles_pass_with_high_coverage(regate: Regate) -> None:
    result = regate("test", DEFAULT_BUNDLE, STRICT_BUNDLE, "--coverage", "--format", "json")
    assert result.code == 0, result.out
    bundles = result.json()["bundles"]
    assert [Path(b["bundle"]).name for b in bundles] == ["default", "strict"]
    for report in bundles:
        assert report["failed"] == 0
        kinds = {r["kind"] for r in report["results"]}
        assert kinds == {"rego", "case"}, "both Rego tests and YAML cases run"
        assert report["passed"] == len(report["results"]) > 10
        assert report["coverage"]["percent"] >= 90
        assert report["coverage"]["files"], "coverage names the policy files"


def test_readme_test_command_as_a_process(regate_process: Regate) -> None:
    result = regate_process(
        "test", "policy-bundles/default", "policy-bundles/strict", "--coverage", "--threshold", "90"
    )
    assert result.code == 0, result.out + result.err
    percents = [float(p) for p in re.findall(r"coverage: ([\d.]+)%", result.out)]
    assert len(percents) == 2 and min(percents) >= 90
    assert re.search(r"^\d+ passed, 0 failed$", result.out, re.MULTILINE)


def test_junit_report_is_valid_xml_that_counts_failures(
    regate: Regate, failing_bundle: Path
) -> None:
    result = regate("test", failing_bundle, "--format", "junit")
    assert result.code == 1
    root = junit(result.out)
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "0")
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "2")
    cases = suite.findall("testcase")
    assert len(cases) == 4
    failed = {c.get("name"): c for c in cases if c.find("failure") is not None}
    assert set(failed) == {
        "data.regate_test.test_denies_every_model",
        "plain request is wrongly expected to be denied",
    }
    rego_case = failed["data.regate_test.test_denies_every_model"]
    assert rego_case.get("file") == str(failing_bundle / "regate" / "decision_test.rego")
    assert rego_case.get("line") == str(FAILING_TEST_LINE)
    yaml_failure = failed["plain request is wrongly expected to be denied"].find("failure")
    assert yaml_failure is not None
    assert "want deny, got allow" in (yaml_failure.get("message") or "")
    assert len(root.findall(".//failure")) == 2


def test_junit_report_of_passing_bundles_has_no_failures(regate: Regate) -> None:
    result = regate("test", STRICT_BUNDLE, "--coverage", "--format", "junit")
    assert result.code == 0
    root = junit(result.out)
    assert root.get("failures") == "0" and int(root.get("tests") or 0) > 0
    assert root.findall(".//failure") == []
    [coverage] = root.findall("./testsuite/properties/property[@name='coverage']")
    assert float(coverage.get("value") or 0) >= 90


def test_junit_failures_exit_1_as_a_process(regate_process: Regate, failing_bundle: Path) -> None:
    result = regate_process("test", failing_bundle, "--format", "junit")
    assert result.code == 1
    assert junit(result.out).get("failures") == "2"


def test_github_format_annotates_each_failure(regate: Regate, failing_bundle: Path) -> None:
    result = regate("test", failing_bundle, "--format", "github")
    assert result.code == 1
    annotations = [line for line in result.out.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 2
    rego_file = failing_bundle / "regate" / "decision_test.rego"
    case_file = failing_bundle / "cases" / "cases.yaml"
    assert annotations[0].startswith(f"::error file={rego_file},line={FAILING_TEST_LINE},")
    assert annotations[1].startswith(f"::error file={case_file},line={FAILING_CASE_LINE},")
    assert annotations[1].endswith("::action: want deny, got allow (reasons: none)")


def test_pretty_report_names_failures_with_file_and_line(
    regate: Regate, failing_bundle: Path
) -> None:
    result = regate("test", failing_bundle)
    assert result.code == 1
    assert (
        f"{failing_bundle / 'cases' / 'cases.yaml'}:{FAILING_CASE_LINE}: action: want deny"
        in result.out
    )
    assert result.out.rstrip().endswith("2 passed, 2 failed")


def test_threshold_above_the_achieved_coverage_fails(
    regate: Regate, partly_covered_bundle: Path
) -> None:
    measured = regate("test", partly_covered_bundle, "--coverage", "--format", "json")
    assert measured.code == 0
    percent = measured.json()["bundles"][0]["coverage"]["percent"]
    assert 0 < percent < 100

    above = regate("test", partly_covered_bundle, "--coverage", "--threshold", f"{percent + 1:.2f}")
    assert above.code == 1
    assert "is below the threshold" in above.out

    below = regate("test", partly_covered_bundle, "--coverage", "--threshold", f"{percent - 1:.2f}")
    assert below.code == 0
    assert "below the threshold" not in below.out

    github = regate(
        "test", partly_covered_bundle, "--coverage", "--threshold", "100", "--format", "github"
    )
    assert github.code == 1
    assert github.out.startswith("::error title=coverage::")


def test_threshold_needs_coverage(regate: Regate) -> None:
    result = regate("test", STRICT_BUNDLE, "--threshold", "90")
    assert result.code == 2
    assert result.out == ""
    assert "--threshold needs --coverage" in result.err


def test_bundle_that_does_not_load_is_exit_2(regate: Regate, tmp_path: Path) -> None:
    bundle = write_files(
        tmp_path / "bad", {"regate/p.rego": 'package regate\n\nx := http.send({"url": "u"})\n'}
    )
    result = regate("test", bundle)
    assert result.code == 2
    assert f"{bundle / 'regate' / 'p.rego'}:3" in result.err


def test_run_filter_selects_tests_by_name(regate: Regate, failing_bundle: Path) -> None:
    result = regate("test", failing_bundle, "--run", "allow", "--format", "json")
    assert result.code == 0
    names = [r["name"] for r in result.json()["bundles"][0]["results"]]
    assert names == ["data.regate_test.test_allows_a_model", "plain request is allowed"]
