"""``regate demo``: the main job end to end on embedded defaults, no keys, no servers.

Starts the gateway in-process on loopback with the default bundle and the
``echo`` providers, sends allow / redact / route / deny traffic through the
official ``openai`` SDK (one request streamed), prints what the app sent, the
decision, and what the provider received, then verifies the audit chain.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.audit import verify_chain
from engine.config import parse_config
from engine.secrets import hash_caller_key, new_caller_key

WIDTH = 34


@dataclass(frozen=True)
class Scenario:
    title: str
    principal: str
    model: str
    text: str
    stream: bool = False


SCENARIOS = (
    Scenario(
        "allow", "support-bot", "gpt-4o-mini", "Summarise our refund policy in two sentences."
    ),
    Scenario(
        "redact",
        "support-bot",
        "gpt-4o-mini",
        "Customer jane.doe@example.com, card 4111 1111 1111 1111, wants a refund.",
    ),
    Scenario(
        "redact (streamed)",
        "support-bot",
        "gpt-4o-mini",
        "Call the customer back on +1 415 555 0100 today.",
        stream=True,
    ),
    Scenario(
        "route",
        "eu-analyst",
        "gpt-4o-mini",
        "Draft a reply to the Berlin office about the Q3 numbers.",
    ),
    Scenario(
        "deny (secret)",
        "support-bot",
        "gpt-4o-mini",
        "Why does this fail? aws_access_key_id=AKIAIOSFODNN7EXAMPLE",
    ),
    Scenario("deny (model)", "support-bot", "gpt-3.5-turbo-instruct", "Hello there."),
)


def demo_config(directory: Path, keys: dict[str, str]) -> str:
    """Embedded defaults plus two demo principals (keys minted for this run only)."""
    return textwrap.dedent(
        f"""\
        principals:
          - id: support-bot
            kind: app
            team: support
            labels: {{region: us}}
            keys: ["{hash_caller_key(keys["support-bot"])}"]
          - id: eu-analyst
            kind: user
            team: analytics
            labels: {{region: eu}}
            keys: ["{hash_caller_key(keys["eu-analyst"])}"]
        routes:
          "*": [{{provider: echo, model: echo}}]
        audit: {{path: {json.dumps(str(directory / "audit.jsonl"))}, prompt: none}}
        """
    )


def forwarded_text(answer: str) -> str:
    """The user text the provider received, read from the echo provider's answer."""
    try:
        body = json.loads(answer)
        return str(body["messages"][-1]["content"])
    except (ValueError, KeyError, IndexError, TypeError):
        return answer


def run_scenario(base_url: str, key: str, scenario: Scenario) -> tuple[str, str]:
    """(decision id, what the provider received or the error the app saw)."""
    import openai  # the SDK and the gateway load only for this command: `regate check` starts fast

    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
    messages: Any = [{"role": "user", "content": scenario.text}]
    try:
        if scenario.stream:
            raw = client.chat.completions.with_raw_response.create(
                model=scenario.model, messages=messages, stream=True
            )
            text = "".join(
                chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices
            )
            return raw.headers.get("x-regate-decision-id", ""), forwarded_text(text)
        raw_response = client.chat.completions.with_raw_response.create(
            model=scenario.model, messages=messages
        )
        completion = raw_response.parse()
        return raw_response.headers.get("x-regate-decision-id", ""), forwarded_text(
            completion.choices[0].message.content or ""
        )
    except openai.APIStatusError as exc:
        return exc.response.headers.get(
            "x-regate-decision-id", ""
        ), f"(nothing sent) app got {exc.status_code} {type(exc).__name__}"


def cell(text: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(text, width) or [""]


def print_row(columns: list[str]) -> None:
    wrapped = [cell(c, w) for c, w in zip(columns, (18, WIDTH, WIDTH, WIDTH), strict=True)]
    for i in range(max(len(w) for w in wrapped)):
        print(
            "  ".join(
                f"{(w[i] if i < len(w) else ''):<{width}}"
                for w, width in zip(wrapped, (18, WIDTH, WIDTH, WIDTH), strict=True)
            )
        )


def run(args: argparse.Namespace) -> int:
    from adapters.fake_provider.server import run_in_thread
    from adapters.http.app import create_app
    from adapters.http.gateway import Gateway

    with tempfile.TemporaryDirectory(prefix="regate-demo-") as tmp:
        directory = Path(tmp)
        keys = {
            "support-bot": new_caller_key("support-bot"),
            "eu-analyst": new_caller_key("eu-analyst"),
        }
        config = parse_config(
            demo_config(directory, keys), source="<demo>", env=os.environ, base_dir=directory
        )
        gateway = Gateway(config, env=os.environ)
        bundle = gateway.pipeline.bundle
        print(
            f"regate demo: bundle {bundle.source} (revision {bundle.revision}), "
            f"engine {gateway.pipeline.evaluator.name}, providers echo/echo-eu\n"
        )
        results = []
        with run_in_thread(create_app(gateway)) as base_url:
            for scenario in SCENARIOS:
                results.append(
                    (scenario, *run_scenario(base_url, keys[scenario.principal], scenario))
                )
        events = {
            e["id"]: e
            for e in map(json.loads, (directory / "audit.jsonl").read_text().splitlines())
        }
        print_row(["scenario", "the app sent", "decision", "the provider received"])
        print_row(["-" * 18, "-" * WIDTH, "-" * WIDTH, "-" * WIDTH])
        for scenario, decision_id, received in results:
            event = events.get(decision_id, {})
            reasons = ", ".join(r["code"] for r in event.get("reasons", [])) or "-"
            where = f" -> {event['provider']}" if event.get("provider") else ""
            decision = f"{event.get('action', '?')}{where} [{reasons}] {event.get('status', '')}"
            print_row(
                [f"{scenario.title} ({scenario.principal})", scenario.text, decision, received]
            )
            print()
        result = verify_chain(directory / "audit.jsonl")
        print(
            f"audit: {result.lines} events, hash chain {'intact' if result.ok else 'BROKEN: ' + str(result.reason)}"
        )
        missing = [s.title for s, decision_id, _ in results if decision_id not in events]
        if missing:
            print(f"missing audit events for: {', '.join(missing)}")
        return 0 if result.ok and not missing else 1


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="run the main job end to end on embedded defaults and show each decision"
    )
    demo.set_defaults(run=run)
