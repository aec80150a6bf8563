"""The HTTP providers: OpenAI (and any OpenAI-compatible ``base_url``), Anthropic, Gemini."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import quote

from adapters.providers.base import HttpProvider, ProviderCall


class OpenAIProvider(HttpProvider):
    default_base_url = "https://api.openai.com/v1"
    apis: ClassVar[Mapping[str, str]] = {"chat": "openai.chat", "embeddings": "openai.embeddings"}

    def credential_headers(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def url(self, call: ProviderCall) -> str:
        return f"{self.base_url}/{'embeddings' if call.operation == 'embeddings' else 'chat/completions'}"


class AnthropicProvider(HttpProvider):
    default_base_url = "https://api.anthropic.com"
    apis: ClassVar[Mapping[str, str]] = {"chat": "anthropic.messages"}
    version = "2023-06-01"

    def credential_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key, "anthropic-version": self.version}

    def url(self, call: ProviderCall) -> str:
        return f"{self.base_url}/v1/messages"


class GeminiProvider(HttpProvider):
    default_base_url = "https://generativelanguage.googleapis.com"
    apis: ClassVar[Mapping[str, str]] = {"chat": "gemini.generate_content"}

    def credential_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}  # a header, never the ?key= query string that lands in logs

    def url(self, call: ProviderCall) -> str:
        model = quote(call.model, safe="")
        if call.stream:
            return f"{self.base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse"
        return f"{self.base_url}/v1beta/models/{model}:generateContent"
