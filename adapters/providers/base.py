"""The provider interface: one call in a provider's own wire format, one response back.

A provider knows its URL layout, how to present its credential and which wire
API it speaks per operation; it knows nothing of policy. Credentials are held
as ``engine.secrets.Secret`` and revealed only into the upstream request headers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from adapters.providers.upstream import Timeouts, UpstreamClient, UpstreamResponse
from engine.config import ProviderConfig
from engine.errors import InputError
from engine.secrets import Secret


@dataclass(frozen=True)
class ProviderCall:
    """One upstream call: ``body`` is already in the provider's wire format."""

    operation: str  # chat | embeddings
    api: str  # the wire API of ``body``, from ``Provider.wire_api``
    model: str
    body: Mapping[str, Any]
    stream: bool
    raw: bytes | None = None  # ``body`` already serialized (the client's own bytes, unchanged)


class Provider(Protocol):
    name: str

    def wire_api(self, operation: str, client_api: str) -> str:
        """The wire API this provider speaks for ``operation`` (raises ``InputError``
        when it cannot serve the operation)."""
        ...

    async def send(self, call: ProviderCall) -> UpstreamResponse:
        """Perform the call; raises ``UpstreamError`` when no response arrives."""
        ...


class HttpProvider:
    """Shared plumbing of the HTTP providers: config, credential, client, timeouts."""

    default_base_url = ""
    apis: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self, config: ProviderConfig, credential: Secret | None, client: UpstreamClient
    ) -> None:
        self.name = config.name
        self.config = config
        self.base_url = (config.base_url or self.default_base_url).rstrip("/")
        self._credential = credential
        self._client = client
        self.timeouts = Timeouts(config.timeout.connect, config.timeout.read, config.timeout.total)

    def wire_api(self, operation: str, client_api: str) -> str:
        try:
            return self.apis[operation]
        except KeyError:
            raise InputError(
                f"provider {self.name!r} ({self.config.type}) cannot serve {operation} requests",
                status=400,
            ) from None

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(self.config.headers)
        if self._credential is not None:
            headers.update(self.credential_headers(self._credential.reveal()))
        return headers

    def credential_headers(self, key: str) -> dict[str, str]:
        raise NotImplementedError

    def url(self, call: ProviderCall) -> str:
        raise NotImplementedError

    async def send(self, call: ProviderCall) -> UpstreamResponse:
        body = call.raw
        if body is None:
            body = json.dumps(call.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return await self._client.send(
            self.url(call),
            headers=self._headers(),
            body=body,
            stream=call.stream,
            timeouts=self.timeouts,
        )
