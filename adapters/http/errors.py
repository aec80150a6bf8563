"""Error responses in the client's own wire format, so SDKs raise their usual exceptions.

Every error carries the request (= decision) id in ``x-regate-decision-id``;
messages are regate's own words or already scrubbed upstream text, never a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from adapters.translate.errors import error_body


def error_response(
    api: str,
    status: int,
    code: str,
    message: str,
    *,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    body = error_body(api, status, code, message, extra=extra)
    all_headers = {"x-regate-decision-id": request_id, **(headers or {})}
    return Response(json.dumps(body), status, all_headers, media_type="application/json")
