"""Decision logs in OPA's format (``EventV1``), uploaded alongside the audit chain.

``event`` builds one event per decision (input masked as the audit level says),
``encoder`` packs events into size-capped gzip JSON arrays, and ``uploader``
buffers them and POSTs them to ``<url>/logs`` in the background.
"""

from adapters.decision_logs.uploader import DecisionLogUploader, decision_log_uploader

__all__ = ["DecisionLogUploader", "decision_log_uploader"]
