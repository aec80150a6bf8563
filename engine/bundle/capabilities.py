"""Capabilities check: which builtins a bundle's Rego may call.

A policy must never reach the network or the process (``http.send``,
``net.lookup_ip_addr``, ``opa.runtime`` ...), or it could read provider keys
from the environment or exfiltrate prompts; and it may only call builtins that
both OPA and the embedded engine implement, so it decides the same on both.
The list lives in ``capabilities.json`` beside this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from engine.evaluators.regorus_ast import ref_name


@dataclass(frozen=True)
class Capabilities:
    builtins: frozenset[str]
    forbidden: frozenset[str]


@dataclass(frozen=True)
class CapabilityViolation:
    file: str
    line: int
    builtin: str
    forbidden: bool

    def message(self) -> str:
        if self.forbidden:
            return f"builtin {self.builtin} is forbidden: policies may not reach the network or the process"
        return (
            f"builtin {self.builtin} is not supported by regate's engines (see capabilities.json)"
        )


@cache
def default_capabilities() -> Capabilities:
    raw = json.loads((Path(__file__).parent / "capabilities.json").read_text(encoding="utf-8"))
    return Capabilities(frozenset(raw["builtins"]), frozenset(raw["forbidden"]))


def _walk_calls(node: Any) -> Iterator[tuple[list[str], int]]:
    if isinstance(node, dict):
        call = node.get("Call")
        if isinstance(call, dict) and "fcn" in call:
            name = ref_name(call["fcn"])
            if name is not None:
                yield name, int(call["span"]["line"])
        for value in node.values():
            yield from _walk_calls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_calls(value)


def _module_names(module: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(rule names defined in the module, import aliases) of one parsed module."""
    rules: set[str] = set()
    for rule in module["ast"].get("rules", []):
        spec = rule.get("Spec") or rule.get("Default") or {}
        head = spec.get("head", {})
        for shape in head.values():
            if isinstance(shape, dict) and "refr" in shape:
                name = ref_name(shape["refr"], through_brackets=True)
                if name:
                    rules.add(name[0])
            elif isinstance(shape, dict) and "name" in shape:
                rules.add(str(shape["name"]))
        refr = spec.get("refr")
        if isinstance(refr, dict):
            name = ref_name(refr, through_brackets=True)
            if name:
                rules.add(name[0])
    aliases: set[str] = set()
    source = module["source"]["contents"].encode("utf-8")  # spans count bytes
    for imp in module["ast"].get("imports", []):
        alias = imp.get("as")
        if isinstance(alias, dict):  # a span into the source text
            aliases.add(source[alias["start"] : alias["end"]].decode("utf-8"))
        else:
            name = ref_name(imp["refr"])
            if name:
                aliases.add(name[-1])
    return rules, aliases


def check_capabilities(
    ast_modules: Sequence[Mapping[str, Any]], caps: Capabilities | None = None
) -> list[CapabilityViolation]:
    """Every call in the parsed modules (regorus ``get_ast_as_json``) that is
    neither a function defined in the policy nor an allowed builtin."""
    caps = caps or default_capabilities()
    violations = []
    for module in ast_modules:
        local_rules, aliases = _module_names(module)
        file = module["source"]["file"]
        for name, line in _walk_calls(module["ast"]):
            head = name[0]
            if (
                head in ("data", "input")
                or head in aliases
                or (len(name) == 1 and head in local_rules)
            ):
                continue
            dotted = ".".join(name)
            if dotted in caps.forbidden:
                violations.append(CapabilityViolation(file, line, dotted, True))
            elif dotted not in caps.builtins:
                violations.append(CapabilityViolation(file, line, dotted, False))
    return violations
