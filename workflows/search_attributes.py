"""The saga's search attributes: how operators find any checkout with one visibility query.

Defined once, for the saga, the API (starting and listing sagas), the worker (registering
them), `make dev`, compose and the tests. Temporal's SQL visibility holds at most three Int
attributes: the workflow id already names the bid, so they go to the artwork and the people.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from workflows.types import CheckoutPhase, CheckoutStatus, PaymentSagaInput

ARTWORK_ID = SearchAttributeKey.for_int("ArtworkId")
BUYER_ID = SearchAttributeKey.for_int("BuyerId")
SELLER_ID = SearchAttributeKey.for_int("SellerId")
CHECKOUT_PHASE = SearchAttributeKey.for_keyword("CheckoutPhase")
PAYMENT_DEADLINE = SearchAttributeKey.for_datetime("PaymentDeadline")
AMOUNT_DUE = SearchAttributeKey.for_float("AmountDue")  # the total, in the major unit
CURRENCY = SearchAttributeKey.for_keyword("Currency")

CHECKOUT_SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    ARTWORK_ID,
    BUYER_ID,
    SELLER_ID,
    CHECKOUT_PHASE,
    PAYMENT_DEADLINE,
    AMOUNT_DUE,
    CURRENCY,
)

# Each type as Temporal's CLI, tcld and the dev server's flags spell it.
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
}

# Histories recorded before the saga indexed itself must replay without these commands.
INDEXING_PATCH = "checkout-search-attributes"


def type_name(key: SearchAttributeKey[Any]) -> str:
    return _TYPE_NAMES[key.indexed_value_type]


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` arguments that register every attribute at start."""
    flags: list[str] = []
    for key in CHECKOUT_SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={type_name(key)}"]
    return flags


def start_attributes(saga: PaymentSagaInput) -> TypedSearchAttributes:
    """What is known when the API starts a saga: a checkout is findable from its first moment."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(ARTWORK_ID, saga.artwork_id),
        SearchAttributePair(BUYER_ID, saga.buyer_id),
        SearchAttributePair(CHECKOUT_PHASE, CheckoutPhase.RESERVING.value),
        SearchAttributePair(CURRENCY, saga.currency),
    ]
    if saga.seller_id is not None:
        pairs.append(SearchAttributePair(SELLER_ID, saga.seller_id))
    return TypedSearchAttributes(pairs)


def indexed(saga: PaymentSagaInput, status: CheckoutStatus) -> list[SearchAttributePair[Any]]:
    """Every attribute as the checkout's status says it should read now."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(ARTWORK_ID, status.artwork_id),
        SearchAttributePair(BUYER_ID, status.buyer_id),
        SearchAttributePair(CHECKOUT_PHASE, status.phase.value),
        SearchAttributePair(CURRENCY, status.currency),
    ]
    if saga.seller_id is not None:
        pairs.append(SearchAttributePair(SELLER_ID, saga.seller_id))
    if status.amount is not None:
        pairs.append(SearchAttributePair(AMOUNT_DUE, float(status.amount)))
    if status.expires_at is not None:
        pairs.append(SearchAttributePair(PAYMENT_DEADLINE, status.expires_at))
    return pairs


def keep_indexed(saga: PaymentSagaInput, status: CheckoutStatus) -> None:
    """Upserts the attributes that no longer match the status; workflow code only.

    Only changed values are sent, so a run adds a handful of events however often its status
    is shown. Sagas started without attributes (a test, an older API) get them all at once.
    """
    current = workflow.info().typed_search_attributes
    changed = [pair for pair in indexed(saga, status) if current.get(pair.key) != pair.value]
    if changed and workflow.patched(INDEXING_PATCH):
        workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in changed])
