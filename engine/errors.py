"""Errors raised by the engine, each with a stable snake_case ``code``.

The codes appear unchanged in HTTP error bodies, audit events and CLI output,
so they are part of regate's public surface::

    RegateError
     +-- InputError            bad request content (wire or canonical)      -> 4xx
     +-- BundleError           a bundle cannot be read, checked or verified
     |    +-- SignatureError   .signatures.json missing, invalid or mismatched
     +-- ConfigError           the configuration file is invalid
     +-- EvaluationError       the Rego engine failed to produce a value
"""

from __future__ import annotations


class RegateError(Exception):
    """Base class: ``code`` is stable, ``str(err)`` is for humans."""

    code = "regate_error"

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def location(self) -> str:
        """``file:line`` (or ``file``, or ``""``) where the problem comes from."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message


class InputError(RegateError):
    """The request body cannot be turned into a canonical document."""

    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


class BundleError(RegateError):
    code = "bundle_error"


class SignatureError(BundleError):
    code = "bundle_signature_error"


class ConfigError(RegateError):
    code = "config_error"


class EvaluationError(RegateError):
    code = "evaluation_error"
