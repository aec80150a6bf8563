"""Providers by type name: ``openai``, ``anthropic``, ``gemini``, ``echo``.

providers = build_providers(config, credentials, upstream_client)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.providers.base import Provider, ProviderCall
from adapters.providers.echo import EchoProvider
from adapters.providers.http import AnthropicProvider, GeminiProvider, OpenAIProvider
from adapters.providers.upstream import UpstreamClient
from engine.config import Config
from engine.secrets import Secret

PROVIDER_TYPES: Mapping[str, Any] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "echo": EchoProvider,
}

__all__ = ["PROVIDER_TYPES", "Provider", "ProviderCall", "build_providers"]


def build_providers(
    config: Config, credentials: Mapping[str, Secret], client: UpstreamClient
) -> dict[str, Provider]:
    """One provider object per configured provider, holding its resolved credential."""
    return {
        name: PROVIDER_TYPES[p.type](p, credentials.get(name), client)
        for name, p in config.providers.items()
    }
