"""The embedded evaluator: Rego evaluated in-process by regorus.

regorus is a Rust Rego interpreter (microsoft/regorus 0.13.0 bindings, PyPI
``gordon-to-regorus``); it evaluates a small decision rule in microseconds,
which is why it is the default engine.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import regorus

from engine.errors import BundleError, EvaluationError
from engine.evaluators.base import CoverageReport, RegoTestResult

if TYPE_CHECKING:
    from engine.bundle.loader import Bundle
    from engine.config import Config

# regorus errors look like "--> file.rego:3:9\n  |\n3 | foo := {\n ... error: expecting expression"
_LOCATION = re.compile(r"-->\s*(?P<file>[^\n:]+):(?P<line>\d+):(?P<col>\d+)")
_MESSAGE = re.compile(r"^error:\s*(?P<msg>.+)$", re.MULTILINE)


def explain_regorus_error(exc: BaseException) -> tuple[str, str | None, int | None]:
    """(message, file, line) of a regorus exception, without its Rust backtrace."""
    text = str(exc).split("Stack backtrace:")[0].strip()
    where = _LOCATION.search(text)
    what = _MESSAGE.search(text)
    message = what.group("msg").strip() if what else (text.splitlines() or ["unknown error"])[-1]
    if where is None:
        return message, None, None
    return message, where.group("file"), int(where.group("line"))


def _ref_parts(node: Mapping[str, Any]) -> list[str]:
    if "Var" in node:
        return [str(node["Var"]["value"])]
    if "RefDot" in node:
        return [*_ref_parts(node["RefDot"]["refr"]), str(node["RefDot"]["field"][1])]
    return []


class EmbeddedEvaluator:
    """Evaluates queries against one set of policy modules and data.

    >>> ev = EmbeddedEvaluator([("p.rego", "package p\\nx := input.a + 1")], {})
    >>> ev.evaluate_sync("data.p.x", {"a": 1})
    2
    """

    name = "embedded"

    def __init__(
        self, modules: Sequence[tuple[str, str]], data: Mapping[str, Any], *, coverage: bool = False
    ) -> None:
        self._engine = regorus.Engine()
        self._engine.set_rego_v0(False)
        self._engine.set_enable_coverage(coverage)
        for path, text in modules:
            try:
                self._engine.add_policy(path, text)
            except Exception as exc:  # regorus raises plain Exception/RuntimeError
                message, file, line = explain_regorus_error(exc)
                raise BundleError(f"rego compile error: {message}", file=file or path, line=line) from None
        try:
            self._engine.add_data(dict(data))
        except Exception as exc:
            raise BundleError(f"bundle data rejected by the engine: {explain_regorus_error(exc)[0]}") from None
        self._modules = tuple(modules)

    @classmethod
    def from_bundle(cls, bundle: Bundle, config: Config | None = None) -> EmbeddedEvaluator:
        """The evaluator for a loaded bundle's policy modules (tests excluded) and data."""
        return cls(bundle.policy_modules(), bundle.data)

    def ast(self) -> list[dict[str, Any]]:
        """Parsed modules, as regorus' JSON AST (used by the capabilities check)."""
        return json.loads(self._engine.get_ast_as_json())  # type: ignore[no-any-return]

    def test_rules(self, files: Iterable[str] | None = None) -> list[tuple[str, str, str, int]]:
        """``(package, rule, file, line)`` of every ``test_`` rule, in file order."""
        wanted = None if files is None else set(files)
        found: dict[tuple[str, str], tuple[str, str, str, int]] = {}
        for module in self.ast():
            file = module["source"]["file"]
            if wanted is not None and file not in wanted:
                continue
            package = ".".join(_ref_parts(module["ast"]["package"]["refr"]))
            for rule in module["ast"].get("rules", []):
                spec = rule.get("Spec")
                if not spec:
                    continue
                for head in spec["head"].values():
                    parts = _ref_parts(head.get("refr", {})) if isinstance(head, dict) else []
                    if len(parts) == 1 and parts[0].startswith("test_"):
                        found.setdefault((package, parts[0]), (package, parts[0], file, int(spec["span"]["line"])))
        return list(found.values())

    def evaluate_sync(self, query: str, input_doc: Mapping[str, Any]) -> Any:
        try:
            self._engine.set_input(input_doc)
            return self._engine.eval_rule(query)
        except Exception as exc:
            message, file, line = explain_regorus_error(exc)
            raise EvaluationError(f"rego evaluation error: {message}", file=file, line=line) from None

    async def evaluate(self, query: str, input_doc: Mapping[str, Any]) -> Any:
        return self.evaluate_sync(query, input_doc)

    async def close(self) -> None:
        return None

    def run_tests(self, tests: Iterable[tuple[str, str, str, int | None]]) -> list[RegoTestResult]:
        """Run Rego test rules given as ``(package, rule, file, line)``.

        A test passes when its rule evaluates to ``true``; undefined, false or
        an error fails it (as ``opa test`` does).
        """
        engine = self._engine
        engine.set_gather_prints(True)
        results = []
        for package, rule, file, line in tests:
            started = time.perf_counter()
            error: str | None = None
            try:
                value = engine.eval_rule(f"data.{package}.{rule}")
                passed = value is True
                if not passed:
                    error = "undefined" if value is None else f"evaluated to {json.dumps(value)}"
            except Exception as exc:
                passed = False
                error = explain_regorus_error(exc)[0]
            prints = engine.take_prints()
            if prints and not passed:
                error = f"{error}\n" + "\n".join(prints)
            results.append(
                RegoTestResult(
                    package, rule, file, line, passed, error, (time.perf_counter() - started) * 1000
                )
            )
        engine.set_gather_prints(False)
        return results

    def coverage(self, files: Iterable[str]) -> CoverageReport:
        """Line coverage of ``files`` over every evaluation since construction
        (only when built with ``coverage=True``)."""
        wanted = set(files)
        raw = json.loads(self._engine.get_coverage_report_as_json())
        return CoverageReport(
            {
                f["path"]: (frozenset(f.get("covered", [])), frozenset(f.get("not_covered", [])))
                for f in raw.get("files", [])
                if f["path"] in wanted
            }
        )

