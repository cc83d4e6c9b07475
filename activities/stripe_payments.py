"""The saga's Stripe side: create (once), look at, and cancel PaymentIntents."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

import stripe
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    STRIPE_REQUEST_REFUSED,
    IntentSnapshot,
    OpenedPaymentIntent,
    OpenPaymentIntent,
    PaymentIntentRef,
)
from domain.checkout import IntentState, PaymentStatus, intent_state
from domain.stripe_events import charge_id_of
from infra.db import SessionFactory
from infra.tables import Payment

T = TypeVar("T")

# Stripe's answers that no retry can change. Everything else is retried by Temporal: network
# errors, 5xx and rate limits, but also a revoked key, which an operator can fix while the
# saga waits (a failed saga would strand the artwork instead).
_PERMANENT_STRIPE_ERRORS = (
    stripe.InvalidRequestError,
    stripe.IdempotencyError,
    stripe.CardError,
)


class StripePayments:
    def __init__(self, client: stripe.StripeClient, sessions: SessionFactory) -> None:
        self._intents = client.v1.payment_intents
        self._sessions = sessions

    @activity.defn
    async def open_payment_intent(self, request: OpenPaymentIntent) -> OpenedPaymentIntent:
        """The checkout's PaymentIntent, created at most once, and its `payments` row.

        Real Stripe answers a repeated idempotency key with the first intent; an emulator may
        not, so what the database already knows is reused before anything is created.
        """
        known_id = await self._known_intent_id(request.bid_id)
        if known_id is not None:
            intent = await _refusals_are_final(self._intents.retrieve_async(known_id))
        else:
            intent = await _refusals_are_final(
                self._intents.create_async(
                    params={
                        "amount": request.amount_minor,
                        "currency": request.currency,
                        # Valid up to the pinned API version (see STRIPE_API_VERSION); the
                        # SDK's types describe a later version that renamed the field.
                        "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
                        "metadata": {
                            "workflow_id": request.workflow_id,
                            "bid_id": str(request.bid_id),
                            "artwork_id": str(request.artwork_id),
                            "buyer_id": str(request.buyer_id),
                        },
                    },
                    options={"idempotency_key": request.idempotency_key},
                )
            )
        payment_id, recorded_id, expires_at = await self._record(request, intent.id)
        if recorded_id != intent.id:
            # An earlier, abandoned attempt recorded its intent first: keep that one, and
            # cancel ours so nobody can pay a second time.
            await _refusals_are_final(self._intents.cancel_async(intent.id))
            intent = await _refusals_are_final(self._intents.retrieve_async(recorded_id))
        return OpenedPaymentIntent(
            payment_id=payment_id,
            payment_intent_id=intent.id,
            client_secret=intent.client_secret or "",
            stripe_status=intent.status,
            expires_at=expires_at,
        )

    @activity.defn
    async def retrieve_payment_intent(self, ref: PaymentIntentRef) -> IntentSnapshot:
        return await self._snapshot(ref.payment_intent_id)

    @activity.defn
    async def cancel_payment_intent(self, ref: PaymentIntentRef) -> IntentSnapshot:
        """Cancels an unpaid intent; when Stripe refuses, its current state is the answer."""
        try:
            intent = await self._intents.cancel_async(ref.payment_intent_id)
        except stripe.InvalidRequestError as refusal:
            # Stripe refuses to cancel an intent that succeeded (or was canceled) meanwhile.
            # What happened is read from the intent itself, never from the error text.
            snapshot = await self._snapshot(ref.payment_intent_id)
            if intent_state(snapshot.stripe_status) is IntentState.OPEN:
                raise ApplicationError(
                    f"Stripe refused to cancel open PaymentIntent {ref.payment_intent_id}: "
                    f"{refusal.user_message or refusal}",
                ) from refusal
            activity.logger.info(
                "Cancel of %s refused: it is %s", ref.payment_intent_id, snapshot.stripe_status
            )
            return snapshot
        return _snapshot_of(intent)

    async def _snapshot(self, payment_intent_id: str) -> IntentSnapshot:
        intent = await _refusals_are_final(
            self._intents.retrieve_async(payment_intent_id, params={"expand": ["latest_charge"]})
        )
        return _snapshot_of(intent)

    async def _known_intent_id(self, bid_id: int) -> str | None:
        async with self._sessions() as session:
            query = select(Payment.stripe_payment_intent_id).where(Payment.bid_id == bid_id)
            return (await session.exec(query)).first()

    async def _record(
        self, request: OpenPaymentIntent, intent_id: str
    ) -> tuple[int, str, datetime]:
        """Upserts the payment row; returns its id, its intent and its deadline.

        A row that exists keeps its intent and deadline: a saga restarted after a crash or an
        operator's termination must neither open a second intent nor extend the buyer's time.
        """
        table = Payment.__table__  # type: ignore[attr-defined]
        upsert = insert(table).values(
            bid_id=request.bid_id,
            stripe_payment_intent_id=intent_id,
            amount=request.amount,
            fee_amount=request.fee_amount,
            currency=request.currency,
            status=PaymentStatus.PENDING.value,
            workflow_id=request.workflow_id,
            expires_at=request.expires_at,
        )
        statement = upsert.on_conflict_do_update(
            index_elements=[table.c.bid_id],
            set_={
                "stripe_payment_intent_id": func.coalesce(
                    table.c.stripe_payment_intent_id, upsert.excluded.stripe_payment_intent_id
                ),
                "workflow_id": upsert.excluded.workflow_id,
                "updated_at": func.now(),
            },
        ).returning(table.c.id, table.c.stripe_payment_intent_id, table.c.expires_at)
        async with self._sessions() as session, session.begin():
            row = (await session.exec(statement)).one()
        return int(row[0]), str(row[1]), row[2]


def _snapshot_of(intent: stripe.PaymentIntent) -> IntentSnapshot:
    return IntentSnapshot(
        payment_intent_id=intent.id,
        stripe_status=intent.status,
        charge_id=charge_id_of(intent.to_dict()),
    )


async def _refusals_are_final(call: Awaitable[T]) -> T:
    try:
        return await call
    except _PERMANENT_STRIPE_ERRORS as refusal:
        raise ApplicationError(
            f"Stripe refused the request: {refusal.user_message or refusal}",
            {"http_status": refusal.http_status, "code": refusal.code},
            type=STRIPE_REQUEST_REFUSED,
            non_retryable=True,
        ) from refusal
