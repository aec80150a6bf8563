"""Gateway benchmark (not a test): regate vs the aiohttp floor vs the upstream alone.

Starts the nginx upstream from ../shared/bench, the Starlette+aiohttp floor, and
``regate serve`` with the default bundle, then runs wrk (``run.sh``) against each
at 1 and 16 connections and prints rps, p50, p99 and the ratios
regate/floor and regate/direct, all measured in the same run.

    python bench/gateway.py [--seconds 8] [--shared ../shared]

Needs Debian's ``nginx-light`` and ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from engine.secrets import hash_caller_key

REPO = Path(__file__).resolve().parent.parent
UPSTREAM_PORT = 18080  # fixed by shared/bench/nginx-upstream.conf
CALLER_KEY = "sk-bench"  # what shared/bench/post.lua sends
RESULT = re.compile(
    r"rps=(?P<rps>[\d.]+) p50_ms=(?P<p50>[\d.]+) p90_ms=[\d.]+ p99_ms=(?P<p99>[\d.]+) "
    r"errors=(?P<errors>\d+) non2xx=(?P<non2xx>\d+)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def start_process(
    stack: ExitStack, args: list[str], log: Path, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """A process in its own group, stopped with the stack; its output goes to ``log``
    (a pipe nobody reads would fill up and stall it during a long run)."""
    sink = stack.enter_context(log.open("ab"))
    process = subprocess.Popen(args, stdout=sink, stderr=sink, start_new_session=True, **kwargs)

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    stack.callback(stop)
    return process


def regate_config(directory: Path) -> Path:
    path = directory / "regate-bench.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            principals:
              - id: bench
                kind: app
                labels: {{region: us}}
                keys: ["{hash_caller_key(CALLER_KEY)}"]
            providers:
              upstream:
                type: openai
                base_url: http://127.0.0.1:{UPSTREAM_PORT}/v1
                api_key: {{env: BENCH_UPSTREAM_KEY}}
                region: us
            routes:
              "*": [{{provider: upstream}}]
            audit: {{path: {directory / "audit.jsonl"}, fsync: never}}
            limits: {{quotas: []}}
            """
        )
    )
    return path


def wrk(run_sh: Path, seconds: int, conns: int, name: str, url: str) -> dict[str, float]:
    out = subprocess.run(
        ["bash", str(run_sh), str(seconds), str(conns), f"{name}={url}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = RESULT.search(out)
    if match is None:
        raise RuntimeError(f"wrk printed no RESULT for {name}: {out!r}")
    return {k: float(v) for k, v in match.groupdict().items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    bench_dir = args.shared / "bench"
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(
                f"bench: {tool} is not installed (apt-get install nginx-light wrk)", file=sys.stderr
            )
            return 2
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="regate-bench-") as tmp:
        directory = Path(tmp)
        start_process(
            stack,
            [nginx, "-c", str((bench_dir / "nginx-upstream.conf").resolve())],
            directory / "nginx.log",
        )
        wait_for_port(UPSTREAM_PORT)
        floor_port, regate_port = free_port(), free_port()
        start_process(
            stack,
            [
                sys.executable,
                "-m",
                "uvicorn",
                "floor_aiohttp:app",
                "--app-dir",
                str(bench_dir),
                "--port",
                str(floor_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            directory / "floor.log",
        )
        env = {
            **os.environ,
            "BENCH_UPSTREAM_KEY": "sk-upstream-bench",
            "REGATE_LOG_LEVEL": "WARNING",
        }
        start_process(
            stack,
            [
                sys.executable,
                "-m",
                "adapters.cli.main",
                "serve",
                "--config",
                str(regate_config(directory)),
                "--port",
                str(regate_port),
            ],
            directory / "regate.log",
            env=env,
            cwd=directory,
        )
        wait_for_port(floor_port)
        wait_for_port(regate_port)
        targets = {
            "direct": f"http://127.0.0.1:{UPSTREAM_PORT}/v1/chat/completions",
            "floor": f"http://127.0.0.1:{floor_port}/v1/chat/completions",
            "regate": f"http://127.0.0.1:{regate_port}/v1/chat/completions",
        }
        for name, url in targets.items():  # warm-up
            wrk(bench_dir / "run.sh", 1, 4, name, url)
        results: dict[tuple[str, int], dict[str, float]] = {}
        for _ in range(args.rounds):
            for conns in (1, 16):
                for name, url in targets.items():
                    r = wrk(bench_dir / "run.sh", args.seconds, conns, name, url)
                    best = results.get((name, conns))
                    if best is None or r["rps"] > best["rps"]:
                        results[(name, conns)] = r
    print(
        f"{'target':>8} {'conns':>5} {'rps':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'non2xx':>7}"
    )
    for (name, conns), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(
            f"{name:>8} {conns:>5} {r['rps']:>10.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} "
            f"{r['errors']:>7.0f} {r['non2xx']:>7.0f}"
        )
    for conns in (1, 16):
        reg, floor, direct = (
            results[("regate", conns)],
            results[("floor", conns)],
            results[("direct", conns)],
        )
        print(
            f"c={conns}: regate/floor rps {reg['rps'] / floor['rps']:.2f}x, "
            f"regate/direct rps {reg['rps'] / direct['rps']:.3f}x, "
            f"p50 added over direct {reg['p50'] - direct['p50']:.3f} ms, p99 {reg['p99']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
