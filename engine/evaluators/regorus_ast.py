"""Reading regorus' JSON AST (``Engine.get_ast_as_json``): dotted names of references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ref_name(node: Mapping[str, Any], *, through_brackets: bool = False) -> list[str] | None:
    """Dotted name of a ``Var``/``RefDot`` chain (``crypto.x509.parse`` ->
    ``["crypto", "x509", "parse"]``), or ``None`` for other shapes. With
    ``through_brackets``, ``p[x]`` names ``p``."""
    if through_brackets and "RefBrack" in node:
        return ref_name(node["RefBrack"]["refr"], through_brackets=True)
    if "Var" in node:
        return [str(node["Var"]["value"])]
    if "RefDot" in node:
        inner = ref_name(node["RefDot"]["refr"], through_brackets=through_brackets)
        return None if inner is None else [*inner, str(node["RefDot"]["field"][1])]
    return None
