"""The payload codec: what it seals opens again, with any key of the ring; histories from before
it pass through; an unknown key or an altered byte is refused, saying which payload."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.payload_codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
)
from infra.payload_keys import PayloadKeys, generate_key
from infra.settings import Environment, Settings
from infra.temporal import data_converter
from workflows.types import CheckoutPhase, CheckoutStatus

OLD = generate_key("2024-old")
NEW = generate_key("2025-new")

payloads = st.builds(
    lambda metadata, data: Payload(metadata=metadata, data=data),
    st.dictionaries(st.text(min_size=1, max_size=20), st.binary(max_size=40), max_size=4),
    st.binary(max_size=2000),
)


def codec(*keys: object) -> EncryptionCodec:
    return EncryptionCodec(PayloadKeys(tuple(keys)))  # type: ignore[arg-type]


@given(st.lists(payloads, max_size=5))
async def test_what_is_encoded_decodes_to_the_same_payloads(originals: list[Payload]) -> None:
    ring = codec(NEW, OLD)
    sealed = await ring.encode(originals)
    assert len(sealed) == len(originals)
    for payload in sealed:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID_METADATA] == b"2025-new"
    assert await ring.decode(sealed) == originals


@given(st.binary(min_size=16, max_size=200))
async def test_the_data_is_not_readable_and_never_sealed_the_same_way_twice(data: bytes) -> None:
    ring = codec(NEW)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=data)
    first, second = await ring.encode([plain, plain])
    assert data not in first.data
    assert first.data != second.data  # a fresh nonce per payload


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
async def test_the_service_converter_round_trips_any_json_value(value: object) -> None:
    converter = data_converter(settings_with(NEW, OLD))
    sealed = await converter.encode([value])
    assert sealed[0].metadata["encoding"] == ENCODING
    assert await converter.decode(sealed) == [value]


async def test_a_checkout_status_keeps_its_decimals_and_datetimes() -> None:
    converter = data_converter(settings_with(NEW))
    status = CheckoutStatus(
        phase=CheckoutPhase.AWAITING_PAYMENT,
        bid_id=7,
        artwork_id=3,
        buyer_id=11,
        currency="usd",
        hammer_price=Decimal("150.00"),
        amount=Decimal("154.79"),
        client_secret="pi_123_secret_456",
        expires_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    sealed = await converter.encode([status])
    assert b"pi_123_secret_456" not in sealed[0].SerializeToString()
    assert await converter.decode(sealed, [CheckoutStatus]) == [status]


@given(payloads)
async def test_a_payload_from_before_the_codec_passes_through_unchanged(plain: Payload) -> None:
    if plain.metadata.get("encoding") == ENCODING:
        return
    assert await codec(NEW).decode([plain]) == [plain]


async def test_a_history_written_before_the_codec_still_decodes_to_its_values() -> None:
    written_before = pydantic_data_converter.payload_converter.to_payloads(
        [{"phase": "sold"}, None, "payment-bid-7"]
    )
    converter = data_converter(settings_with(NEW))
    assert await converter.decode(written_before) == [{"phase": "sold"}, None, "payment-bid-7"]


async def test_after_a_rotation_old_payloads_decode_and_new_ones_use_the_new_key() -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"before the rotation"')
    (sealed_before,) = await codec(OLD).encode([plain])

    rotated = codec(NEW, OLD)
    assert await rotated.decode([sealed_before]) == [plain]
    (sealed_after,) = await rotated.encode([plain])
    assert sealed_after.metadata[KEY_ID_METADATA] == b"2025-new"
    assert await rotated.decode([sealed_after]) == [plain]


async def test_a_payload_under_a_key_the_ring_does_not_hold_fails_naming_the_key() -> None:
    (sealed,) = await codec(NEW).encode([Payload(data=b"x")])
    with pytest.raises(PayloadDecryptionError) as refused:
        await codec(OLD).decode([Payload(data=b"plain"), sealed])
    message = str(refused.value)
    assert "payload 1" in message
    assert "'2025-new'" in message
    assert "TEMPORAL_PAYLOAD_KEYS does not hold" in message
    assert "2024-old" in message  # what it does hold, by id


@given(st.data())
async def test_any_altered_byte_is_refused(data: st.DataObject) -> None:
    (sealed,) = await codec(NEW).encode([Payload(data=b'{"amount": "154.79"}')])
    index = data.draw(st.integers(0, len(sealed.data) - 1), label="byte")
    flip = data.draw(st.integers(1, 255), label="xor")
    altered = bytearray(sealed.data)
    altered[index] ^= flip
    sealed.data = bytes(altered)
    with pytest.raises(PayloadDecryptionError, match="does not decrypt with key '2025-new'"):
        await codec(NEW).decode([sealed])


async def test_a_payload_relabelled_with_another_key_id_is_refused() -> None:
    (sealed,) = await codec(NEW).encode([Payload(data=b"x")])
    sealed.metadata[KEY_ID_METADATA] = b"2024-old"
    with pytest.raises(PayloadDecryptionError, match="altered"):
        await codec(NEW, OLD).decode([sealed])


async def test_a_truncated_payload_is_refused() -> None:
    (sealed,) = await codec(NEW).encode([Payload(data=b"x")])
    sealed.data = sealed.data[:20]
    with pytest.raises(PayloadDecryptionError, match="too short"):
        await codec(NEW).decode([sealed])


def test_no_secret_in_a_repr() -> None:
    ring = PayloadKeys((NEW, OLD))
    settings = settings_with(NEW, OLD)
    secret_text = ring.render()
    shown = [repr(ring), str(ring), repr(codec(NEW, OLD)), repr(NEW), repr(settings)]
    for text in shown:
        for key in (NEW, OLD):
            assert key.secret.hex() not in text
            assert repr(key.secret) not in text
        assert secret_text.split(",")[0].split(":")[1] not in text
    assert "2025-new" in repr(ring) and "2025-new" in repr(codec(NEW))


def settings_with(*keys: object) -> Settings:
    return Settings.model_validate(
        {
            "environment": Environment.TEST,
            "temporal_payload_keys": PayloadKeys(tuple(keys)).render(),  # type: ignore[arg-type]
        }
    )
