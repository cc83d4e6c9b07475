"""The keys Temporal payloads are encrypted with: TEMPORAL_PAYLOAD_KEYS, or a development key.

TEMPORAL_PAYLOAD_KEYS is `key_id:base64-of-32-bytes[,key_id:base64...]`. The first key
encrypts; every key decrypts, so a key rotates by putting a new one first and keeping the old
ones for as long as a history still holds payloads encrypted with them.

Error messages name entries by position and key id, never by what the secret part holds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from infra.settings import Environment, Settings

KEY_BYTES = 32  # AES-256
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Beside what `make dev` keeps: PostgreSQL, Temporal's file and the logs.
DEVELOPMENT_KEY_FILE = Path(__file__).resolve().parent.parent / ".data" / "temporal-payload-key"
GENERATE_HINT = 'e.g. TEMPORAL_PAYLOAD_KEYS="k1:$(openssl rand -base64 32)"'


class PayloadKeyError(ValueError):
    """The keys are missing or malformed: the process must not start."""


@dataclass(frozen=True)
class PayloadKey:
    key_id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, repr=False)
class PayloadKeys:
    """The key ring, the encrypting key first. Its repr names the key ids only."""

    keys: tuple[PayloadKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise PayloadKeyError("TEMPORAL_PAYLOAD_KEYS holds no key")
        ids = [key.key_id for key in self.keys]
        duplicated = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
        if duplicated:
            raise PayloadKeyError(f"TEMPORAL_PAYLOAD_KEYS names key id {duplicated[0]} twice")

    @property
    def primary(self) -> PayloadKey:
        return self.keys[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key.key_id for key in self.keys)

    def __iter__(self) -> Iterator[PayloadKey]:
        return iter(self.keys)

    def __repr__(self) -> str:
        return f"PayloadKeys(key_ids={list(self.key_ids)!r})"

    __str__ = __repr__

    @classmethod
    def parse(cls, text: str, source: str = "TEMPORAL_PAYLOAD_KEYS") -> PayloadKeys:
        entries = [entry.strip() for entry in text.strip().split(",")]
        return cls(
            tuple(
                _parse_entry(entry, position, source)
                for position, entry in enumerate(entries, start=1)
            )
        )

    def render(self) -> str:
        """The TEMPORAL_PAYLOAD_KEYS text of this ring (it holds the secrets)."""
        return ",".join(
            f"{key.key_id}:{base64.b64encode(key.secret).decode()}" for key in self.keys
        )


def _parse_entry(entry: str, position: int, source: str) -> PayloadKey:
    key_id, colon, encoded = entry.partition(":")
    if not colon:
        raise PayloadKeyError(f"entry {position} of {source} is not key_id:base64-of-32-bytes")
    key_id = key_id.strip()
    if not KEY_ID.fullmatch(key_id):
        raise PayloadKeyError(
            f"entry {position} of {source}: a key id is 1 to 64 letters, digits, '.', '_' or '-'"
        )
    try:
        secret = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PayloadKeyError(
            f"key {key_id} in {source} is not valid base64; {GENERATE_HINT}"
        ) from None
    if len(secret) != KEY_BYTES:
        raise PayloadKeyError(
            f"key {key_id} in {source} is {len(secret)} bytes, not {KEY_BYTES}; {GENERATE_HINT}"
        )
    return PayloadKey(key_id, secret)


def generate_key(key_id: str) -> PayloadKey:
    if not KEY_ID.fullmatch(key_id):
        raise PayloadKeyError(f"{key_id!r} is not a valid key id")
    return PayloadKey(key_id, secrets.token_bytes(KEY_BYTES))


def load_payload_keys(
    settings: Settings, development_file: Path = DEVELOPMENT_KEY_FILE
) -> PayloadKeys:
    """TEMPORAL_PAYLOAD_KEYS; unset, the development key (refused in production)."""
    configured = settings.temporal_payload_keys
    if configured is not None:
        return PayloadKeys.parse(configured.get_secret_value())
    if settings.environment is Environment.PRODUCTION:
        raise PayloadKeyError(
            "TEMPORAL_PAYLOAD_KEYS must be set in production: the key that encrypts what "
            f"Temporal stores, as key_id:base64-of-32-bytes; {GENERATE_HINT}"
        )
    return development_keys(development_file)


def development_keys(path: Path = DEVELOPMENT_KEY_FILE) -> PayloadKeys:
    """The key kept in `path`, made on first use (0600), then the same for every process
    of this checkout: the worker, the API and the CLI's codec must agree on it."""
    if not path.exists():
        _create_once(path, generate_key(f"dev-{secrets.token_hex(4)}"))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PayloadKeyError(f"{path} may be read by other users: `chmod 600 {path}`")
    return PayloadKeys.parse(path.read_text(), source=str(path))


def _create_once(path: Path, key: PayloadKey) -> None:
    """Writes the key beside `path`, then links it into place: two processes starting at
    once agree on whichever link came first, and no reader ever sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(PayloadKeys((key,)).render() + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
