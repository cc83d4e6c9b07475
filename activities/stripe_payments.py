"""The saga's Stripe side: create (once), look at, and cancel PaymentIntents."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import stripe
from sqlalchemy import func, literal_column
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import (
    STRIPE_REQUEST_REFUSED,
    IntentSnapshot,
    OpenedPaymentIntent,
    OpenPaymentIntent,
    PaymentIntentRef,
    payment_intent_idempotency_key,
)
from activities.intent_lookup import find_intent_by_idempotency_key
from domain.announcements import payment_required
from domain.checkout import IntentState, PaymentStatus, intent_state
from domain.stripe_events import charge_id_of
from infra.announcer import Announcer
from infra.db import SessionFactory, without_transaction
from infra.queries import checkout_facts, recorded_intent_id
from infra.tables import Payment

T = TypeVar("T")

# Stripe's answers that no retry can change. Everything else is retried by Temporal: network
# errors, 5xx and rate limits, but also a revoked key, which an operator can fix while the
# saga waits (a failed saga would end the checkout instead).
_PERMANENT_STRIPE_ERRORS = (stripe.InvalidRequestError, stripe.CardError)

# Stripe's search index lags its writes by up to a minute: an intent our key created may not
# be found at once. After this many attempts (about ten minutes of backoff) we give up.
LOOKUP_ATTEMPTS = 15


class StripePayments:
    def __init__(
        self,
        client: stripe.StripeClient,
        sessions: SessionFactory,
        announcer: Announcer,
        idempotency_prefix: str = "",
    ) -> None:
        self._intents = client.v1.payment_intents
        self._sessions = sessions
        self._announcer = announcer
        self._idempotency_prefix = idempotency_prefix

    @activity.defn
    async def open_payment_intent(self, request: OpenPaymentIntent) -> OpenedPaymentIntent:
        """The checkout's PaymentIntent, created at most once, and its `payments` row.

        Real Stripe answers a repeated idempotency key with the first intent; an emulator may
        not, so what the database already knows is reused before anything is created.
        """
        clock = _server_clock()
        known = await self._recorded_intent_id(request.bid_id)
        if known is not None:
            intent = await _refusals_are_final(self._intents.retrieve_async(known))
        else:
            intent = await self._made_by_an_earlier_attempt(request) or await self._create(request)
        # The buyer's window opens now that the intent is payable, whenever that is: a Stripe
        # outage before it must not eat into it.
        row = await self._record(request, intent.id, clock() + _seconds(request))
        if row.stripe_payment_intent_id != intent.id:
            # An earlier, abandoned attempt recorded its intent first: keep that one, and
            # cancel ours so nobody can pay a second time.
            await _refusals_are_final(self._intents.cancel_async(intent.id))
            intent = await _refusals_are_final(
                self._intents.retrieve_async(row.stripe_payment_intent_id)
            )
        metadata: dict[str, Any] = row.payment_metadata or {}
        return OpenedPaymentIntent(
            payment_id=row.id,
            payment_intent_id=intent.id,
            client_secret=intent.client_secret or "",
            stripe_status=intent.status,
            expires_at=row.expires_at,
            amount=row.amount,
            fee_amount=row.fee_amount,
            currency=row.currency,
            declines=int(metadata.get("declines", 0)),
            failure_reason=row.failure_reason,
            original_expires_at=_original_deadline(metadata),
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

    async def _made_by_an_earlier_attempt(
        self, request: OpenPaymentIntent
    ) -> stripe.PaymentIntent | None:
        """An intent an earlier attempt created but never heard back about (its answer lost,
        or its time up). Stripe's idempotency key would answer with it too; an emulator that
        ignores keys would make a second one."""
        if activity.info().attempt == 1:
            return None
        key = payment_intent_idempotency_key(self._idempotency_prefix, request.workflow_id)
        return await find_intent_by_idempotency_key(self._intents, key)

    async def _create(self, request: OpenPaymentIntent) -> stripe.PaymentIntent:
        key = payment_intent_idempotency_key(self._idempotency_prefix, request.workflow_id)
        generation = _key_generation()
        metadata = {
            "workflow_id": request.workflow_id,
            "bid_id": str(request.bid_id),
            "artwork_id": str(request.artwork_id),
            "buyer_id": str(request.buyer_id),
            "environment": self._idempotency_prefix,
            "idempotency_key": key,
        }
        try:
            return await _refusals_are_final(
                self._intents.create_async(
                    params={
                        "amount": request.amount_minor,
                        "currency": request.currency,
                        # Valid up to the pinned API version (see STRIPE_API_VERSION); the
                        # SDK's types describe a later version that renamed the field.
                        "payment_method_types": ["card"],  # type: ignore[typeddict-unknown-key]
                        "metadata": metadata,
                    },
                    options={"idempotency_key": f"{key}-{generation}" if generation else key},
                )
            )
        except stripe.APIError as failed:
            if (failed.http_status or 0) >= 500:
                # Stripe saves a 5xx its endpoint answered against the key, and answers every
                # retry with it for a day: the next attempt sends a key of a new generation.
                # (An intent this attempt did make is found by the key in its metadata first.)
                activity.heartbeat(generation + 1)
            raise
        except stripe.IdempotencyError:
            # Our key already made an intent, with other parameters (a saga restarted under
            # other fee settings after the first answer was lost): that intent is ours.
            found = await find_intent_by_idempotency_key(self._intents, key)
            if found is not None:
                return found
            attempt = activity.info().attempt
            raise ApplicationError(
                f"Stripe holds an intent for key {key} that search does not show yet",
                type=None if attempt < LOOKUP_ATTEMPTS else STRIPE_REQUEST_REFUSED,
                non_retryable=attempt >= LOOKUP_ATTEMPTS,
            ) from None

    async def _snapshot(self, payment_intent_id: str) -> IntentSnapshot:
        intent = await _refusals_are_final(
            self._intents.retrieve_async(payment_intent_id, params={"expand": ["latest_charge"]})
        )
        return _snapshot_of(intent)

    async def _recorded_intent_id(self, bid_id: int) -> str | None:
        async with self._sessions() as session:
            await without_transaction(session)
            return await recorded_intent_id(session, bid_id)

    async def _record(
        self, request: OpenPaymentIntent, intent_id: str, expires_at: datetime
    ) -> Row[Any]:
        """Upserts the payment row and returns it; the row's first write tells the winner.

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
            expires_at=expires_at,
        )
        statement = upsert.on_conflict_do_update(
            index_elements=[table.c.bid_id],
            set_={"workflow_id": upsert.excluded.workflow_id, "updated_at": func.now()},
        ).returning(table, (literal_column("xmax") == 0).label("inserted"))
        async with self._sessions() as session, session.begin():
            row: Row[Any] = (await session.exec(statement)).one()
            if row.inserted:  # PostgreSQL's xmax is 0 for a row this statement inserted
                facts = await checkout_facts(session, request.bid_id)
                await self._announcer.write(
                    session, payment_required(facts, occurred_at=datetime.now(UTC))
                )
        return row


def _snapshot_of(intent: stripe.PaymentIntent) -> IntentSnapshot:
    fields = intent.to_dict()
    return IntentSnapshot(
        payment_intent_id=intent.id,
        stripe_status=intent.status,
        charge_id=charge_id_of(fields),
        amount_minor=fields.get("amount"),
        currency=fields.get("currency"),
    )


def _original_deadline(metadata: dict[str, Any]) -> datetime | None:
    """The deadline before any operator's extension, when there was one."""
    recorded = metadata.get("original_expires_at")
    return datetime.fromisoformat(recorded) if isinstance(recorded, str) else None


def _key_generation() -> int:
    """How many times Stripe answered this create with a 5xx, as earlier attempts recorded."""
    details = activity.info().heartbeat_details
    return int(details[0]) if details else 0


def _seconds(request: OpenPaymentIntent) -> timedelta:
    return timedelta(seconds=request.payment_window_seconds)


def _server_clock() -> Callable[[], datetime]:
    """Temporal's clock, as the workflow sees it: the attempt's start plus the time since.

    The deadline must be on the workflow's clock (which a test server may skip ahead), not
    this machine's.
    """
    started, at = activity.info().started_time, time.monotonic()
    return lambda: started + timedelta(seconds=time.monotonic() - at)


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
