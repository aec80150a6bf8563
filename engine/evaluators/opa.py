"""The ``opa`` evaluator: Rego evaluated by a real OPA server, through opa-python-client.

regate **pushes** the bundle to OPA (policy and data APIs) rather than letting
OPA pull it from a bundle service: a plain ``opa run --server`` that security
teams already operate needs no configuration change, the modules reach OPA
exactly as regate loaded and checked them (including the ``rules/`` library),
and a push failure surfaces in regate, where the fail-closed path lives.

Several gateways and bundles may share one OPA, so each set of modules and
data lives under its own namespace, ``data.regate_bundles.b<hash>``, the hash
being over the bundle's content (its modules, the ``rules/`` library included,
and its data). Every module is moved there by a lexical rewrite that keeps lines
and semantics: ``package p`` becomes ``package regate_bundles.b<hash>.p`` and every
root reference ``data`` becomes ``data.regate_bundles.b<hash>`` (comments and
strings are left alone). Identical content gives the identical namespace, so processes
serving the same bundle share it, and pushing it again is a no-op; a namespace
is removed only by :meth:`OpaEvaluator.unload` (one-shot commands use private
namespaces and unload them).

Every OPA failure (unreachable, slower than ``timeout_ms``, HTTP error) raises
``EvaluationError``, so the decision pipeline denies with ``policy.error``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from opa_client import AsyncOpaClient
from opa_client.errors import (
    DeleteDataError,
    DeletePolicyError,
    PolicyNotFoundError,
    RegoParseError,
)

from engine.errors import BundleError, EvaluationError, RegateError
from engine.evaluators.base import RegoTestResult

if TYPE_CHECKING:
    from engine.bundle.loader import Bundle
    from engine.config import Config

NAMESPACE_ROOT = "regate_bundles"
DEFAULT_URL = "http://127.0.0.1:8181"
ADMIN_TIMEOUT_S = 30.0  # pushing modules makes OPA recompile: slower than a decision
_QUERY = re.compile(r"^data((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACE = re.compile(r"\s*")


def namespace_for(modules: Sequence[tuple[str, str]], data: Mapping[str, Any]) -> str:
    """The namespace segment of a set of modules and data: ``b`` + 24 hex digits."""
    content = json.dumps([sorted(modules), data], sort_keys=True, ensure_ascii=False, default=str)
    return "b" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:24]


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal opening at ``start`` (``"`` or a backtick)."""
    quote = text[start]
    i = start + 1
    while i < len(text) and text[i] != quote:
        i += 2 if quote == '"' and text[i] == "\\" else 1
    return min(i + 1, len(text))


def rewrite_module(text: str, prefix: str) -> str:
    """Move a Rego module under ``prefix`` (a dotted path), keeping every line in place.

    >>> rewrite_module('# a.\\npackage a.b\\nx := data.c["d"] # data\\ny := input.data', "ns.n1")
    '# a.\\npackage ns.n1.a.b\\nx := data.ns.n1.c["d"] # data\\ny := input.data'
    """
    out: list[str] = []
    i, previous, packaged = 0, "", False
    while i < len(text):
        char = text[i]
        if char == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
        elif char in '"`':
            end = _string_end(text, i)
        elif char.isalpha() or char == "_":
            word = _IDENT.match(text, i)
            assert word is not None
            end, lexeme = word.end(), word.group()
            if lexeme == "package" and not packaged and previous != ".":
                space = _SPACE.match(text, end)
                assert space is not None
                end = space.end()
                lexeme += space.group() + prefix + "."
                packaged = True
            elif lexeme == "data" and previous != ".":
                lexeme = "data." + prefix
            out.append(lexeme)
            i, previous = end, lexeme[-1]
            continue
        else:
            end = i + 1
        out.append(text[i:end])
        if char != "#" and not char.isspace():
            previous = text[end - 1]
        i = end
    return "".join(out)


def _target(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of an OPA URL; only ``http(s)://host[:port]`` is supported."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise BundleError("policy.opa_url must look like http://host:port (no path)")
    tls = parts.scheme == "https"
    return parts.hostname, parts.port or (443 if tls else 80), tls


class OpaEvaluator:
    """Evaluates queries on an OPA server, for one set of modules and data.

    >>> ev = OpaEvaluator([("p.rego", "package p\\nx := input.a + 1")], {}, url="http://127.0.0.1:8181")
    >>> ev.prefix.startswith("regate_bundles.b")
    True
    """

    name = "opa"

    def __init__(
        self,
        modules: Sequence[tuple[str, str]],
        data: Mapping[str, Any],
        *,
        url: str = DEFAULT_URL,
        timeout_ms: float = 250.0,
        namespace: str | None = None,
        library: Iterable[str] = (),
    ) -> None:
        self._host, self._port, self._tls = _target(url)
        self._modules = tuple(modules)
        self._data = dict(data)
        self._library = frozenset(library)
        self.timeout_ms = timeout_ms
        self.prefix = f"{NAMESPACE_ROOT}.{namespace or namespace_for(self._modules, self._data)}"
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._ready = False
        self._lock = asyncio.Lock()

    @classmethod
    def from_bundle(
        cls,
        bundle: Bundle,
        config: Config | None = None,
        *,
        tests: bool = False,
        private: bool = False,
    ) -> OpaEvaluator:
        """The evaluator for a loaded bundle at ``config.policy.opa_url``.

        ``tests`` adds the ``_test.rego`` modules; ``private`` gives a namespace of
        this evaluator's own (for one-shot commands that :meth:`unload` it).
        Nothing reaches OPA before :meth:`prepare` or the first evaluation.
        """
        modules = bundle.policy_modules(tests=tests)
        namespace = namespace_for(modules, bundle.data)
        if private:
            namespace += "_" + secrets.token_hex(4)
        return cls(
            modules,
            bundle.data,
            url=config.policy.opa_url if config else DEFAULT_URL,
            timeout_ms=config.policy.timeout_ms if config else 250.0,
            namespace=namespace,
            library=(m.path for m in bundle.modules if m.from_library),
        )

    @property
    def where(self) -> str:
        return f"{self._host}:{self._port}"

    def _path(self, query: str) -> str:
        match = _QUERY.match(query)
        if match is None:
            raise EvaluationError(
                f"the opa engine evaluates rule paths such as data.a.b, not {query!r}"
            )
        return self.prefix + match.group(1)

    def _policy_id(self, path: str) -> str:
        return f"{self.prefix.replace('.', '/')}/{path}"

    def _unprefix(self, message: str) -> str:
        return message.replace(f"data.{self.prefix}.", "data.").replace(f"{self.prefix}.", "")

    @asynccontextmanager
    async def _opa_errors(self, doing: str, timeout_s: float) -> AsyncIterator[None]:
        """Translate everything the client and aiohttp raise into ``EvaluationError``."""
        try:
            async with asyncio.timeout(timeout_s):
                yield
        except TimeoutError:
            raise EvaluationError(
                f"OPA at {self.where} did not answer within {timeout_s * 1000:g} ms ({doing})"
            ) from None
        except aiohttp.ClientResponseError as exc:
            raise EvaluationError(
                f"OPA at {self.where} answered HTTP {exc.status} ({doing})"
            ) from None
        except aiohttp.ClientError as exc:
            raise EvaluationError(
                f"OPA at {self.where} is unreachable ({doing}): {type(exc).__name__}"
            ) from None
        except (PolicyNotFoundError, DeletePolicyError) as exc:
            raise EvaluationError(
                f"OPA at {self.where}: {self._unprefix(str(exc.message))} ({doing})"
            ) from None

    async def _connect(self) -> Any:
        if self._client is None:
            self._stack = AsyncExitStack()
            client = AsyncOpaClient(
                host=self._host, port=self._port, ssl=self._tls, retries=0, timeout=ADMIN_TIMEOUT_S
            )
            self._client = await self._stack.enter_async_context(client)
        return self._client

    async def prepare(self) -> None:
        """Push the modules and data to OPA, unless already there. Raises
        ``EvaluationError`` when OPA cannot be reached, ``BundleError`` when it
        refuses a module."""
        async with self._lock:
            if self._ready:
                return
            client = await self._connect()
            async with self._opa_errors("pushing the bundle", ADMIN_TIMEOUT_S):
                try:
                    await client.update_or_create_data(self._data, self.prefix.replace(".", "/"))
                except RegoParseError as exc:
                    raise BundleError(
                        f"OPA refused the bundle data: {self._unprefix(str(exc))}"
                    ) from None
                # Each policy write makes OPA recompile everything it holds, so modules
                # already there (same namespace, hence same content) are not written again.
                pending = [m for m in self._ordered() if not await self._holds(m)]
                await self._in_rounds(pending, self._push_module)
            self._ready = True

    async def _holds(self, module: tuple[str, str]) -> bool:
        try:
            await self._client.get_policy(self._policy_id(module[0]))
        except PolicyNotFoundError:
            return False
        return True

    def _ordered(self) -> list[tuple[str, str]]:
        """Library modules first: a module calling a function OPA has not seen is refused."""
        return sorted(
            self._modules, key=lambda m: (m[0] not in self._library, m[0].endswith("_test.rego"))
        )

    async def _push_module(self, module: tuple[str, str]) -> None:
        path, text = module
        await self._client.update_policy_from_string(
            rewrite_module(text, self.prefix), self._policy_id(path), rego_compat=False
        )

    async def _in_rounds(
        self, modules: list[tuple[str, str]], step: Callable[[tuple[str, str]], Awaitable[None]]
    ) -> None:
        """Apply ``step`` to every module, retrying those OPA refuses while others
        succeed (a module may need another's functions first). OPA has no batch API."""
        while modules:
            refused: list[tuple[tuple[str, str], RegoParseError]] = []
            for module in modules:
                try:
                    await step(module)
                except RegoParseError as exc:
                    refused.append((module, exc))
            if len(refused) == len(modules):
                raise self._refusal(*refused[0])
            modules = [module for module, _ in refused]

    def _refusal(self, module: tuple[str, str], exc: RegoParseError) -> BundleError:
        first = next((e for e in exc.errors if isinstance(e, dict)), {})
        location = first.get("location") or {}
        message = self._unprefix(str(first.get("message") or exc.message))
        return BundleError(
            f"OPA refused the module: {message}", file=module[0], line=location.get("row")
        )

    async def evaluate(self, query: str, input_doc: Mapping[str, Any]) -> Any:
        """Value of ``query`` (e.g. ``data.regate.decision``) for ``input_doc``; ``None``
        when undefined. Every failure is an ``EvaluationError``."""
        path = self._path(query)
        if not self._ready:
            try:
                await self.prepare()
            except RegateError as exc:
                raise EvaluationError(f"the opa engine is not ready: {exc}") from None
        async with self._opa_errors(f"evaluating {query}", self.timeout_ms / 1000):
            body = await self._client.query_rule(dict(input_doc), path)
        return body.get("result")

    async def test_rules(
        self, files: Iterable[str] | None = None
    ) -> list[tuple[str, str, str, int]]:
        """``(package, rule, file, line)`` of every ``test_`` rule, as OPA parsed them."""
        await self.prepare()
        wanted = None if files is None else set(files)
        found: dict[tuple[str, str], tuple[str, str, str, int]] = {}
        for path, text in self._modules:
            if wanted is not None and path not in wanted:
                continue
            async with self._opa_errors(f"reading {path}", ADMIN_TIMEOUT_S):
                ast = (await self._client.get_policy(self._policy_id(path)))["result"]["ast"]
            package = ".".join(str(t["value"]) for t in ast["package"]["path"][1:])
            package = package.removeprefix(self.prefix + ".")
            for rule in ast.get("rules", []):
                head = rule["head"]
                name = str(head.get("name") or "")
                if name.startswith("test_") and not head.get("args"):
                    line = re.search(rf"^[ \t]*{re.escape(name)}\b", text, re.MULTILINE)
                    where = text.count("\n", 0, line.start()) + 1 if line else 0
                    found.setdefault((package, name), (package, name, path, where))
        return list(found.values())

    async def run_tests(
        self, tests: Iterable[tuple[str, str, str, int | None]]
    ) -> list[RegoTestResult]:
        """Run Rego test rules on OPA, without input (as ``opa test`` does): a test
        passes when its rule is ``true``."""
        await self.prepare()
        results = []
        for package, rule, file, line in tests:
            started = time.perf_counter()
            error: str | None = None
            try:
                path = self._path(f"data.{package}.{rule}").replace(".", "/")
                async with self._opa_errors(
                    f"running {rule}", max(self.timeout_ms / 1000, ADMIN_TIMEOUT_S)
                ):
                    value = (await self._client.get_data(path))["result"]
                if value is not True:
                    error = f"evaluated to {json.dumps(value)}"
            except EvaluationError as exc:
                error = "undefined" if "requested data not found" in exc.message else exc.message
            elapsed = (time.perf_counter() - started) * 1000
            results.append(RegoTestResult(package, rule, file, line, error is None, error, elapsed))
        return results

    async def unload(self) -> None:
        """Remove this evaluator's modules and data from OPA."""
        client = await self._connect()
        async with self._opa_errors("removing the bundle", ADMIN_TIMEOUT_S):
            await self._in_rounds(list(reversed(self._ordered())), self._delete_module)
            try:
                await client.delete_data(self.prefix.replace(".", "/"))
            except DeleteDataError as exc:
                if exc.expression != "resource_not_found":
                    raise EvaluationError(
                        f"OPA at {self.where}: {exc.message} (removing the bundle)"
                    ) from None
        self._ready = False

    async def _delete_module(self, module: tuple[str, str]) -> None:
        try:
            await self._client.delete_policy(self._policy_id(module[0]))
        except DeletePolicyError as exc:
            if exc.expression != "resource_not_found":
                # A module others still call is refused like a compile error; retry it later.
                raise RegoParseError(exc.expression, exc.message) from None

    async def close(self) -> None:
        """Close the HTTP session (the namespace stays for others serving the bundle)."""
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self._client, self._ready = None, None, False
