"""schemathesis against a live gateway: requests generated from regate's own OpenAPI
document (``schemas/openapi.v1.json``, served at ``GET /openapi.json``), valid and
invalid, for every operation. No response may be a 5xx, and every response must
conform to the document: documented status, content type, headers and body; invalid
requests must be refused with a 4xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.resources import schema_path
from tests.fuzz.conftest import TALLY, LiveGateway

EXAMPLES = {"POST": 40, "GET": 5}
CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SUITE = "schemathesis"


def test_the_gateway_serves_its_openapi_document(live_gateway: LiveGateway) -> None:
    response = live_gateway.client.get("/openapi.json")

    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == json.loads(schema_path("openapi.v1.json").read_text("utf-8"))
    assert document["openapi"].startswith("3.1")
    schemathesis.openapi.from_dict(document).validate()  # against the OpenAPI 3.1 meta-schema
    assert set(document["components"]["securitySchemes"]) == {"bearer", "api_key"}
    routes = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = {
        ("/v1/chat/completions", "POST"),
        ("/v1/embeddings", "POST"),
        ("/v1/messages", "POST"),
        ("/v1/decide", "POST"),
        ("/v1/models", "GET"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
        ("/metrics", "GET"),
        ("/openapi.json", "GET"),
    }
    assert routes == served


def exercise(
    operation: Any, mode: GenerationMode, gateway: LiveGateway, session: requests.Session
) -> None:
    """Send ``operation``'s generated requests of ``mode`` and check every response."""
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    audited = operation.method.upper() == "POST"

    @settings(
        max_examples=EXAMPLES[operation.method.upper()],
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=gateway.url, session=session, headers=gateway.auth)
        gateway.counted(SUITE, response.status_code, audited=audited)
        case.validate_response(response, checks=checks, headers=gateway.auth)

    run()


def test_schemathesis_finds_no_server_error_and_no_nonconforming_response(
    live_gateway: LiveGateway,
) -> None:
    schema = schemathesis.openapi.from_url(live_gateway.url + "/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the document has operations schemathesis cannot read"
    posts = {op.path for op in operations if op.method.upper() == "POST"}
    assert posts == {"/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/decide"}
    with requests.Session() as session:
        for operation in operations:
            takes_input = operation.body or len(operation.query) > 0
            exercise(operation, GenerationMode.POSITIVE, live_gateway, session)
            if takes_input:
                exercise(operation, GenerationMode.NEGATIVE, live_gateway, session)

    assert sum(TALLY[SUITE].values()) > 0
    assert live_gateway.audit_events() == live_gateway.sent
