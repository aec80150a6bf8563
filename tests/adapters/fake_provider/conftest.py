"""One fake provider on a real loopback socket, shared by these tests and reset before each."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from adapters.fake_provider import FakeProvider, Settings, create_fake_provider, run_in_thread


@pytest.fixture(scope="session")
def _served() -> Iterator[tuple[FakeProvider, str]]:
    fake = create_fake_provider(name="fake")
    with run_in_thread(fake.app) as url:
        yield fake, url


@pytest.fixture
def fake(_served: tuple[FakeProvider, str]) -> FakeProvider:
    """The shared fake provider, with no record, no faults and default settings."""
    provider = _served[0]
    provider.clear()
    provider.settings = Settings()
    return provider


@pytest.fixture
def base_url(fake: FakeProvider, _served: tuple[FakeProvider, str]) -> str:
    return _served[1]


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        yield client


@pytest.fixture
def oai(base_url: str) -> Iterator[openai.OpenAI]:
    url = base_url + "/v1"
    with openai.OpenAI(base_url=url, api_key="sk-openai-test", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(base_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0) as client:
        yield client
