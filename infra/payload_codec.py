"""Encrypts every payload before it reaches Temporal, which then only holds ciphertext.

Each payload, metadata and data alike, is serialized and sealed with AES-256-GCM under the
first key of the ring: `nonce (12 bytes) || ciphertext || tag`, the key id in the metadata
and bound to the ciphertext as associated data. Decoding picks the key by that id; payloads
without our encoding (histories written before the codec) pass through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from infra.payload_keys import PayloadKeys

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16


class PayloadDecryptionError(ValueError):
    """A payload this deployment cannot open: an unknown key id, or altered bytes."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: PayloadKeys) -> None:
        super().__init__()
        self._key_id = keys.primary.key_id
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}

    @property
    def key_id(self) -> str:
        """The id of the key new payloads are encrypted with."""
        return self._key_id

    def __repr__(self) -> str:
        return f"EncryptionCodec(encrypts_with={self._key_id!r}, keys={list(self._ciphers)!r})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._key_id]
        key_id = self._key_id.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id)
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(payload, index) for index, payload in enumerate(payloads)]

    def decode_one(self, payload: Payload, index: int = 0) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA, b"")
        key_id = raw_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload {index} is encrypted with key id {_shown(key_id)}, which "
                f"TEMPORAL_PAYLOAD_KEYS does not hold (it holds {', '.join(self._ciphers)})"
            )
        data = payload.data
        if len(data) < NONCE_BYTES + TAG_BYTES:
            raise PayloadDecryptionError(f"payload {index} is too short to be ours")
        try:
            opened = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], raw_id)
        except InvalidTag:
            raise PayloadDecryptionError(
                f"payload {index} does not decrypt with key {_shown(key_id)}: its bytes or its "
                "key id were altered, or that key id now names another key"
            ) from None
        try:
            return Payload.FromString(opened)
        except Exception as broken:  # protobuf's DecodeError, of an authentic but odd payload
            raise PayloadDecryptionError(f"payload {index} decrypts to no payload") from broken


def _shown(key_id: str) -> str:
    """A key id as read from a payload, safe to print: quoted and cut short."""
    return repr(key_id if len(key_id) <= 64 else key_id[:64] + "...")
