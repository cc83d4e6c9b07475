"""Schemathesis against the running stack: no 5xx, and every answer as /openapi.json says.

Cases come from the API's own schema, valid and invalid alike, sent as a seller, a buyer or
an operator. Random ids and amounts rarely name a row or a price Stripe can charge, so half
of the cases are steered: real ids (an open auction, a checkout waiting for payment),
plausible bodies, and webhook events signed with the real secret, so the requests reach past
the 404s and 422s into bids, closes, checkouts and the saga.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import BaseSchema, Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from stripe import WebhookSignature

from domain.money import SUPPORTED_CURRENCIES
from tests.api.conftest import closed_auction, open_auction
from tests.support.stack import Stack, unique

# Per operation, generation mode and round (17 operations, 2 modes, 2 rounds): about 60 s.
EXAMPLES = 100
# The second round bids on and closes the artworks the first one put up.
ROUNDS = 2
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
WEBHOOK = "POST /api/payments/webhook"


@dataclass(frozen=True)
class Known:
    """Real rows and callers the fuzzer may use instead of random ones."""

    ids: dict[str, list[int]]
    payment_intent_ids: list[str]
    tokens: list[dict[str, str]]
    webhook_secret: str
    sealed: list[dict[str, Any]]  # payloads the codec encrypted: real ones to decode


async def known_rows(stack: Stack) -> Known:
    in_checkout = await closed_auction(stack)
    intent = await stack.post(
        "/api/payments/create-intent", in_checkout.buyer, {"bid_id": in_checkout.bid_id}
    )
    assert intent.status_code == 200, intent.text
    operator = stack.headers(unique("operator"), roles=["operator"])
    plain = {"metadata": {"encoding": _b64(b"json/plain")}, "data": _b64(b'{"phase": "sold"}')}
    sealed = await stack.http.post("/codec/encode", json={"payloads": [plain]}, headers=operator)
    assert sealed.status_code == 200, sealed.text
    seller, open_artwork = await open_auction(stack, "50.00")
    bid = await stack.post(f"/api/artworks/{open_artwork}/bids", in_checkout.buyer, {"amount": 60})
    assert bid.status_code == 201, bid.text
    return Known(
        ids={
            "artwork_id": [in_checkout.artwork_id, open_artwork],
            "payment_id": [intent.json()["payment_id"]],
            "bid_id": [in_checkout.bid_id, bid.json()["id"]],
        },
        payment_intent_ids=[intent.json()["payment_intent_id"]],
        tokens=[
            stack.headers(seller),
            stack.headers(in_checkout.buyer),
            operator,
        ],
        webhook_secret=stack.settings.stripe_webhook_secret,
        sealed=sealed.json()["payloads"],
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)
prices = st.one_of(
    st.sampled_from(["0.50", "50.00", "75.00", "150.00", "1000.00", "999999.99"]),
    st.decimals(min_value="0.01", max_value="99999999.99", places=2).map(str),
)


def plausible_bodies(known: Known) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "POST /api/artworks": st.fixed_dictionaries(
            {"title": texts.filter(bool), "starting_price": prices},
            optional={"currency": st.sampled_from(sorted(SUPPORTED_CURRENCIES))},
        ),
        "POST /api/artworks/{artwork_id}/bids": st.fixed_dictionaries({"amount": prices}),
        "POST /api/payments/create-intent": st.fixed_dictionaries(
            {"bid_id": st.sampled_from(known.ids["bid_id"])}
        ),
        WEBHOOK: stripe_events(known),
        "POST /codec/decode": codec_payloads(known),
        "POST /codec/encode": codec_payloads(known),
    }


def codec_payloads(known: Known) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads as Temporal stores them: plain, sealed by the codec, or sealed and altered."""
    encodings = st.sampled_from([b"json/plain", b"binary/null", b"binary/encrypted"])
    key_ids = st.one_of(texts, st.just("test-session")).map(lambda key_id: _b64(key_id.encode()))
    metadata = st.fixed_dictionaries(
        {"encoding": encodings.map(_b64)}, optional={"encryption-key-id": key_ids}
    )
    made_up = st.fixed_dictionaries(
        {"metadata": metadata, "data": st.binary(max_size=64).map(_b64)}
    )
    sealed = st.sampled_from(known.sealed)
    altered = st.tuples(sealed, st.binary(min_size=1, max_size=8)).map(
        lambda pair: {**pair[0], "data": _b64(base64.b64decode(pair[0]["data"]) + pair[1])}
    )
    return st.fixed_dictionaries(
        {"payloads": st.lists(st.one_of(made_up, sealed, altered), max_size=4)}
    )


def stripe_events(known: Known) -> st.SearchStrategy[dict[str, Any]]:
    intent = st.fixed_dictionaries(
        {"id": st.one_of(st.sampled_from(known.payment_intent_ids), texts.map("pi_".__add__))},
        optional={
            "metadata": st.fixed_dictionaries(
                {},
                optional={
                    "bid_id": st.one_of(
                        st.sampled_from(known.ids["bid_id"]), st.integers(), texts
                    ).map(str)
                },
            ),
            "latest_charge": st.one_of(texts, st.none()),
            "last_payment_error": st.fixed_dictionaries({"code": texts, "message": texts}),
        },
    )
    kinds = ["payment_intent.succeeded", "payment_intent.payment_failed"]
    return st.fixed_dictionaries(
        {
            "id": texts.map("evt_".__add__),
            "type": st.one_of(st.sampled_from([*kinds, "payment_intent.canceled"]), texts),
            "data": st.fixed_dictionaries({"object": intent}),
        },
        optional={"created": st.integers()},
    )


def fuzz(schema: BaseSchema, base_url: str, known: Known) -> list[str]:
    """Runs every operation in both modes, twice; returns the failures with curl lines."""
    failures: list[str] = []
    with requests.Session() as session:
        for _ in range(ROUNDS):
            failures += _fuzz_round(schema, base_url, known, session)
    return failures


def _fuzz_round(
    schema: BaseSchema, base_url: str, known: Known, session: requests.Session
) -> list[str]:
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases = operation.as_strategy(generation_mode=mode)
            try:
                _fuzz_test(cases, base_url, known, session)()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: /healthz
            # Schemathesis reports check failures as a BaseExceptionGroup.
            except (Exception, BaseExceptionGroup) as failure:
                failures.append(f"{operation.label} [{mode.value}]: {failure}")
    return failures


def _fuzz_test(
    cases: st.SearchStrategy[Case[Any]], base_url: str, known: Known, session: requests.Session
) -> Callable[[], None]:
    bodies = plausible_bodies(known)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is enough
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, data=st.data())
    def run(case: Case[Any], data: st.DataObject) -> None:
        headers = data.draw(st.sampled_from(known.tokens), label="caller")
        label = case.operation.label
        response: requests.Response | Response
        if not data.draw(st.booleans(), label="steered"):
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        elif label == WEBHOOK:
            event = data.draw(bodies[WEBHOOK], label="signed event")
            response = _signed_delivery(session, base_url, event, known.webhook_secret)
        else:
            for name in case.path_parameters or {}:
                case.path_parameters[name] = data.draw(st.sampled_from(known.ids[name]))
            if label in bodies:
                case.body = data.draw(bodies[label], label="plausible body")
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS, headers=headers)
        _remember_created(known, label, response)

    return run


def _remember_created(known: Known, label: str, response: requests.Response | Response) -> None:
    """New artworks and bids become targets too: the fuzzer bids on what it put up."""
    if response.status_code != 201:
        return
    created = response.json()
    if label == "POST /api/artworks":
        known.ids["artwork_id"].append(created["id"])
    elif label == "POST /api/artworks/{artwork_id}/bids":
        known.ids["bid_id"].append(created["id"])


def _signed_delivery(
    session: requests.Session, base_url: str, event: dict[str, Any], secret: str
) -> requests.Response:
    payload = json.dumps(event)
    signature = WebhookSignature.generate_signature_header(payload, secret)
    return session.post(
        f"{base_url}/api/payments/webhook",
        data=payload.encode(),
        headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        timeout=30,
    )


async def test_no_server_error_and_every_answer_as_documented(
    stack: Stack, documented: BaseSchema
) -> None:
    known = await known_rows(stack)
    started = time.monotonic()
    # The API and the worker run on this event loop; the fuzzer's blocking calls run beside it.
    failures = await asyncio.to_thread(fuzz, documented, str(stack.http.base_url), known)
    elapsed = time.monotonic() - started
    assert not failures, "\n\n".join(failures)
    assert elapsed < 300, f"fuzzing took {elapsed:.0f} s"
