"""Fixtures shared by every suite: small bundles on disk, and the real components."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BundleFactory = Callable[..., Path]


def require_component(name: str, found: str | None) -> str:
    """Path of a real component; skips the test when absent, except in CI where it fails."""
    if found:
        return found
    message = f"{name} is not installed (run scripts/test-components)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def opa_bin() -> str:
    candidates = [
        os.environ.get("REGATE_OPA_BIN"),
        shutil.which("opa"),
        str(Path.home() / "go/bin/opa"),
    ]
    return require_component("OPA", next((c for c in candidates if c and Path(c).is_file()), None))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _opa_is_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except OSError:
        return False


def _start_opa(opa_bin: str, log: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """An ``opa run --server`` on a free loopback port once ``/health`` answers; ``None``
    when it exits first (most likely the port was taken meanwhile)."""
    url = f"http://127.0.0.1:{free_port()}"
    address = url.removeprefix("http://")
    command = [
        opa_bin,
        "run",
        "--server",
        "--addr",
        address,
        "--disable-telemetry",
        "--log-level",
        "error",
    ]
    with log.open("ab") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if _opa_is_healthy(url):
            return process, url
        time.sleep(0.05)
    _stop(process)
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_opa(opa_bin: str, log: Path) -> Iterator[str]:
    """URL of a fresh ``opa run --server`` on a free loopback port, stopped on exit."""
    for _ in range(3):
        started = _start_opa(opa_bin, log)
        if started is not None:
            break
    else:
        pytest.fail(f"OPA did not become healthy: {log.read_text(errors='replace')[-2000:]}")
    process, url = started
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def opa_server(opa_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one OPA server shared by the session (bundles reach it in namespaces of
    their own); with ``CI=true`` a missing OPA fails rather than skips."""
    with running_opa(opa_bin, tmp_path_factory.mktemp("opa") / "opa.log") as url:
        yield url


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleFactory:
    """Write a bundle directory from ``{relative path: text or JSON-able value}``."""

    def factory(files: Mapping[str, Any], *, name: str = "bundle") -> Path:
        root = tmp_path / name
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            text = content if isinstance(content, str) else json.dumps(content)
            path.write_text(text, encoding="utf-8")
        root.mkdir(parents=True, exist_ok=True)
        return root

    return factory


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on a free loopback port for the session (no persistence)."""
    binary = require_component("Redis (redis-server)", shutil.which("redis-server"))
    directory = tmp_path_factory.mktemp("redis")
    for _ in range(3):
        port = free_port()
        command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ]
        with (directory / "redis.log").open("ab") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=sink)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and process.poll() is None and not _redis_answers(port):
            time.sleep(0.05)
        if process.poll() is None and _redis_answers(port):
            break
        if process.poll() is None:
            _stop(process)
    else:
        pytest.fail(
            f"redis-server did not start: {(directory / 'redis.log').read_text(errors='replace')[-2000:]}"
        )
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)
