"""``regate`` itself: the commands it offers and its usage errors (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import DEFAULT_BUNDLE, EXAMPLES, Regate

REQUEST = EXAMPLES / "requests" / "allow-openai.json"


def test_help_lists_every_contract_command(regate: Regate) -> None:
    result = regate("--help")
    assert result.code == 0
    assert result.out.startswith("usage: regate")
    listed = {
        line.split()[0]
        for line in result.out.splitlines()
        if line.startswith("    ") and line.split()
    }
    assert {"serve", "demo", "check", "test", "eval", "build", "keys", "audit"} <= listed


@pytest.mark.parametrize("command", ["check", "test", "eval", "build", "keys", "audit"])
def test_command_help_exits_0(regate: Regate, command: str) -> None:
    result = regate(command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: regate {command}")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("check", "--bogus", DEFAULT_BUNDLE), "unrecognized arguments: --bogus"),
        (("check",), "required: BUNDLE"),
        (("test",), "required: BUNDLE"),
        (("eval", DEFAULT_BUNDLE), "required: --request"),
        (("build", DEFAULT_BUNDLE), "required: -o/--output"),
        (("check", DEFAULT_BUNDLE, "--format", "xml"), "invalid choice: 'xml'"),
        (("test", DEFAULT_BUNDLE, "--threshold", "ninety"), "invalid float value"),
        (("audit", "verify"), "required: FILE"),
    ],
    ids=lambda value: "-".join(map(str, value)) if isinstance(value, tuple) else None,
)
def test_argument_errors_exit_2(regate: Regate, argv: tuple[str, ...], words: str) -> None:
    result = regate(*argv)
    assert result.code == 2
    assert words in result.err
    assert result.out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ("check", "{missing}"),
        ("check", DEFAULT_BUNDLE, "{missing}"),
        ("test", "{missing}"),
        ("eval", "{missing}", "--request", REQUEST),
        ("build", "{missing}", "-o", "{out}"),
    ],
    ids=["check", "check_second", "test", "eval", "build"],
)
def test_missing_bundle_exits_2(
    regate: Regate, tmp_path: Path, argv: tuple[str | Path, ...]
) -> None:
    missing = tmp_path / "no-such-bundle"
    out = tmp_path / "out.tar.gz"
    result = regate(*(str(a).format(missing=missing, out=out) for a in argv))
    assert result.code == 2
    assert f"{missing}" in result.err
    assert "bundle" in result.err
    assert not out.exists()


def test_unreadable_inputs_exit_2(regate: Regate, tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    for argv in (
        ("eval", DEFAULT_BUNDLE, "--request", missing),
        ("eval", DEFAULT_BUNDLE, "--request", REQUEST, "--principal", missing),
        ("check", DEFAULT_BUNDLE, "--verification-key", missing),
        ("test", DEFAULT_BUNDLE, "--verification-key", missing),
    ):
        result = regate(*argv)
        assert result.code == 2, argv
        assert str(missing) in result.err, argv
        assert "Traceback" not in result.err


def test_usage_errors_exit_2_as_a_process(regate_process: Regate, tmp_path: Path) -> None:
    unknown_flag = regate_process("check", "--bogus", "policy-bundles/default")
    assert unknown_flag.code == 2 and "unrecognized arguments: --bogus" in unknown_flag.err
    missing = regate_process("check", tmp_path / "nope")
    assert missing.code == 2 and f"{tmp_path / 'nope'}" in missing.err
    no_bundle = regate_process("eval", "--request", "examples/requests/allow-openai.json")
    assert no_bundle.code == 2 and "required: BUNDLE" in no_bundle.err
