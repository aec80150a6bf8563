"""Credentials: provider secrets by reference, and the callers' own regate keys.

Provider credentials live outside the config as ``{env: NAME}`` or
``{file: PATH}`` references; :func:`resolve_secret` reads one at start-up into a
:class:`Secret`, whose ``repr``/``str`` never show the value. Caller keys are
stored only as ``sha256:`` hashes; :class:`PrincipalDirectory` maps a presented
key to its principal (Contract 1).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import ConfigError

if TYPE_CHECKING:
    from engine.config import Config, PrincipalConfig

CALLER_KEY_PREFIX = "rgk_"
KEY_HASH_PREFIX = "sha256:"
# Kept equal to the principal id pattern of schemas/config.v1.json (a test checks it).
PRINCIPAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

SecretSource = Literal["env", "file"]


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives (never the secret itself): an env variable or a file.

    ``file``/``line`` locate the reference in the configuration, so a missing
    secret is reported where it was asked for.
    """

    source: SecretSource
    name: str
    file: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @classmethod
    def from_mapping(
        cls, ref: Mapping[str, str], *, file: str | None = None, line: int | None = None
    ) -> SecretRef:
        """``{"env": NAME}`` or ``{"file": PATH}`` -> ``SecretRef``."""
        if len(ref) == 1:
            ((source, name),) = ref.items()
            if source in ("env", "file") and isinstance(name, str) and name:
                return cls(source, name, file, line)  # type: ignore[arg-type]
        raise ConfigError(
            'a secret reference is {"env": NAME} or {"file": PATH}', file=file, line=line
        )

    def __str__(self) -> str:
        return f"{self.source}:{self.name}"


class Secret:
    """A resolved secret. Only :meth:`reveal` returns the value.

    >>> key = Secret("sk-123")
    >>> key, f"{key}", key.reveal()
    (Secret('***'), '***', 'sk-123')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        # Pickling would carry the value out of the process; nothing needs it.
        raise TypeError("Secret values cannot be pickled")


def resolve_secret(ref: SecretRef | Mapping[str, str], *, env: Mapping[str, str]) -> Secret:
    """Read the secret ``ref`` points to. Errors name the variable or file, never a value.

    >>> resolve_secret({"env": "OPENAI_API_KEY"}, env={"OPENAI_API_KEY": "sk-1"})
    Secret('***')
    """
    if not isinstance(ref, SecretRef):
        ref = SecretRef.from_mapping(ref)
    if ref.source == "env":
        value = env.get(ref.name)
        if value is None:
            raise ConfigError(
                f"environment variable {ref.name} is not set", file=ref.file, line=ref.line
            )
        if value == "":
            raise ConfigError(
                f"environment variable {ref.name} is empty", file=ref.file, line=ref.line
            )
        return Secret(value)
    try:
        value = Path(ref.name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(
            f"secret file {ref.name} cannot be read: {why}", file=ref.file, line=ref.line
        ) from None
    if value.endswith("\n"):  # editors and `echo` add one; the secret itself never ends so
        value = value[:-2] if value.endswith("\r\n") else value[:-1]
    if value == "":
        raise ConfigError(f"secret file {ref.name} is empty", file=ref.file, line=ref.line)
    return Secret(value)


def hash_caller_key(key: str) -> str:
    """The config form of a caller key: ``sha256:`` + hex SHA-256 of the whole key string."""
    return KEY_HASH_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_caller_key(principal_id: str) -> str:
    """A fresh caller key for ``principal_id``: ``rgk_`` + 43 URL-safe characters (256 bits).

    The id is only checked, not embedded: a key reveals nothing about its owner.
    """
    if not re.fullmatch(PRINCIPAL_ID_PATTERN, principal_id):
        raise ConfigError(
            f"principal id {principal_id!r} is not valid: letters, digits and ._:@- "
            "(starting with a letter or digit), at most 128 characters"
        )
    return CALLER_KEY_PREFIX + secrets.token_urlsafe(32)


class PrincipalDirectory:
    """Looks up the principal that owns a presented caller key.

    >>> from engine.config import PrincipalConfig
    >>> key = "rgk_example"
    >>> directory = PrincipalDirectory([PrincipalConfig(
    ...     id="bot", kind="app", keys=(hash_caller_key(key),))])
    >>> directory.authenticate(key)
    {'id': 'bot', 'kind': 'app', 'labels': {}}
    >>> directory.authenticate("rgk_wrong") is None
    True
    """

    # A fixed value compared on a miss, so hits and misses do the same work.
    _MISS = KEY_HASH_PREFIX + "0" * 64

    def __init__(self, principals: Iterable[PrincipalConfig]) -> None:
        self._by_hash: dict[str, tuple[str, PrincipalConfig]] = {}
        for principal in principals:
            for key_hash in principal.keys:
                if key_hash in self._by_hash:
                    raise ConfigError(f"key {key_hash} is listed for more than one principal")
                self._by_hash[key_hash] = (key_hash, principal)

    @classmethod
    def from_config(cls, config: Config) -> PrincipalDirectory:
        return cls(config.principals)

    def __len__(self) -> int:
        """Number of principals with at least one key."""
        return len({id(principal) for _, principal in self._by_hash.values()})

    def authenticate(self, presented_key: str | None) -> dict[str, Any] | None:
        """The Contract 1 principal ``{id, kind, team?, labels}`` owning the key, or None.

        Why this is constant-time with respect to the secret: the secret is the
        caller key, and the only thing that depends on it is SHA-256 over the
        presented key, whose cost depends on the presented key's length alone.
        The dict lookup then branches on that *hash*, comparing it with stored
        hashes; any timing it leaks is about how SHA-256(guess) relates to
        stored hashes, which SHA-256's preimage resistance makes useless for
        constructing a key (keys carry 256 random bits, so there is nothing to
        guess byte by byte). ``hmac.compare_digest`` on the hit (and on a fixed
        value on a miss) keeps the final comparison branch-free as well.
        """
        if not presented_key:
            return None
        presented_hash = hash_caller_key(presented_key)
        stored_hash, principal = self._by_hash.get(presented_hash, (self._MISS, None))
        if not hmac.compare_digest(presented_hash, stored_hash) or principal is None:
            return None
        return principal.principal()
