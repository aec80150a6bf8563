"""Test reports for ``regate test``: pretty (people), json, junit (CI), github (annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from engine.evaluators.base import CoverageReport


@dataclass(frozen=True)
class TestResult:
    kind: str  # "rego" (a test_ rule) or "case" (a YAML decision case)
    name: str
    file: str | None
    line: int | None
    passed: bool
    message: str | None
    duration_ms: float


@dataclass(frozen=True)
class BundleReport:
    bundle: str
    results: list[TestResult]
    coverage: CoverageReport | None

    @property
    def failures(self) -> list[TestResult]:
        return [r for r in self.results if not r.passed]


def _where(r: TestResult) -> str:
    return f"{r.file}:{r.line}" if r.file and r.line else (r.file or "")


def _pretty(reports: Sequence[BundleReport], threshold: float | None) -> str:
    out = []
    for report in reports:
        out.append(f"{report.bundle}:")
        for r in report.results:
            status = "PASS" if r.passed else "FAIL"
            out.append(f"  {status} {r.kind:4} {r.name} ({r.duration_ms:.1f} ms)")
            if not r.passed:
                out.append(f"       {_where(r)}: {r.message}")
        passed = len(report.results) - len(report.failures)
        out.append(f"  {passed}/{len(report.results)} passed")
        if report.coverage is not None:
            out.append(f"  coverage: {report.coverage.percent:.1f}%")
            for file, (_covered, missed) in sorted(report.coverage.files.items()):
                if missed:
                    out.append(
                        f"    {file}: lines not covered {', '.join(map(str, sorted(missed)))}"
                    )
            if threshold is not None and report.coverage.percent < threshold:
                out.append(
                    f"  coverage {report.coverage.percent:.1f}% is below the threshold {threshold:g}%"
                )
    total = sum(len(r.results) for r in reports)
    failed = sum(len(r.failures) for r in reports)
    out.append(f"{total - failed} passed, {failed} failed")
    return "\n".join(out)


def _json(reports: Sequence[BundleReport]) -> str:
    doc: dict[str, Any] = {"bundles": []}
    for report in reports:
        entry: dict[str, Any] = {
            "bundle": report.bundle,
            "passed": len(report.results) - len(report.failures),
            "failed": len(report.failures),
            "results": [r.__dict__ for r in report.results],
        }
        if report.coverage is not None:
            entry["coverage"] = {
                "percent": round(report.coverage.percent, 2),
                "files": {
                    f: {"covered": sorted(c), "not_covered": sorted(n)}
                    for f, (c, n) in sorted(report.coverage.files.items())
                },
            }
        doc["bundles"].append(entry)
    return json.dumps(doc, indent=2)


def _junit(reports: Sequence[BundleReport]) -> str:
    suites = ET.Element("testsuites", name="regate test")
    total_tests = total_failures = 0
    total_time = 0.0
    for report in reports:
        seconds = sum(r.duration_ms for r in report.results) / 1000
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=report.bundle,
            tests=str(len(report.results)),
            failures=str(len(report.failures)),
            errors="0",
            skipped="0",
            time=f"{seconds:.6f}",
        )
        for r in report.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{report.bundle}.{r.kind}",
                name=r.name,
                time=f"{r.duration_ms / 1000:.6f}",
                file=r.file or "",
                line=str(r.line or ""),
            )
            if not r.passed:
                failure = ET.SubElement(
                    case, "failure", message=(r.message or "failed").splitlines()[0], type=r.kind
                )
                failure.text = f"{_where(r)}: {r.message}"
        if report.coverage is not None:
            props = ET.SubElement(suite, "properties")
            ET.SubElement(
                props, "property", name="coverage", value=f"{report.coverage.percent:.2f}"
            )
        total_tests += len(report.results)
        total_failures += len(report.failures)
        total_time += seconds
    suites.set("tests", str(total_tests))
    suites.set("failures", str(total_failures))
    suites.set("errors", "0")
    suites.set("time", f"{total_time:.6f}")
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _escape_annotation(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github(reports: Sequence[BundleReport], threshold: float | None) -> str:
    """GitHub Actions workflow commands: one ``::error`` per failure, then a summary."""
    out = []
    for report in reports:
        for r in report.failures:
            props = ",".join(
                p
                for p in (f"file={r.file}" if r.file else "", f"line={r.line}" if r.line else "")
                if p
            )
            title = f"title=regate test: {r.name}".replace(",", "%2C").replace(":", "%3A")
            out.append(
                f"::error {props + ',' if props else ''}{title}::{_escape_annotation(r.message or 'failed')}"
            )
        if (
            report.coverage is not None
            and threshold is not None
            and report.coverage.percent < threshold
        ):
            out.append(
                f"::error title=coverage::{report.bundle}: "
                f"coverage {report.coverage.percent:.1f}% is below {threshold:g}%"
            )
    out.append(_pretty(reports, threshold))
    return "\n".join(out)


def render(reports: Sequence[BundleReport], fmt: str, *, threshold: float | None = None) -> str:
    if fmt == "json":
        return _json(reports)
    if fmt == "junit":
        return _junit(reports)
    if fmt == "github":
        return _github(reports, threshold)
    return _pretty(reports, threshold)
