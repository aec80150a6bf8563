"""A fake upstream LLM provider for tests, benchmarks and the demo.

No machine here reaches a real provider, so this is the one fake: it speaks
the OpenAI, Anthropic and Gemini wire formats, streaming included, records
every request and injects faults on demand::

    fake = create_fake_provider()
    with run_in_thread(fake.app) as url:          # any ASGI app, free port
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test")
        client.chat.completions.create(...)        # -> "echo: <last user text>"
        fake.recorder.last().headers["authorization"]

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/embeddings``,
``GET /v1/models``, ``POST /v1/messages``,
``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent[?alt=sse]``, each also under ``/p/{provider}``.
Replies echo unless ``settings.reply`` is set; ``!tool`` / ``!tool:NAME`` in
the last user message makes a tool call (:mod:`.replies`). Faults come from
the ``x-fake-fault`` header or ``POST /_fake/faults`` (:mod:`.faults`).
"""

from adapters.fake_provider.app import FakeProvider, create_fake_provider
from adapters.fake_provider.faults import (
    Fault,
    FaultRule,
    FaultSchedule,
    FaultSpecError,
    parse_fault,
)
from adapters.fake_provider.recorder import RecordedRequest, Recorder
from adapters.fake_provider.replies import TOOL_TRIGGER, Settings
from adapters.fake_provider.server import run_in_thread, serve

__all__ = [
    "TOOL_TRIGGER",
    "FakeProvider",
    "Fault",
    "FaultRule",
    "FaultSchedule",
    "FaultSpecError",
    "RecordedRequest",
    "Recorder",
    "Settings",
    "create_fake_provider",
    "parse_fault",
    "run_in_thread",
    "serve",
]
