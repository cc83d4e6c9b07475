"""The bare webhook endpoint the service's is measured against: `uvicorn bench.bare_webhook:app`.

It does the least any Stripe webhook endpoint must: check the signature of the raw bytes,
parse the event and signal one workflow (the saga or twin named in the intent's metadata)
through the service's payload converter. No database, no routing, no metrics.
"""

from __future__ import annotations

import json
from typing import Any

import stripe
from fastapi import FastAPI, HTTPException, Request
from temporalio.client import Client

from domain.stripe_events import parse_payment_event
from infra.settings import get_settings
from infra.temporal import connect_temporal, data_converter

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
_settings = get_settings()
_client: Client | None = None


async def _temporal() -> Client:
    global _client
    if _client is None:
        _client = await connect_temporal(_settings, data_converter(_settings))
    return _client


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    await _temporal()
    return {"status": "ok"}


@app.post("/webhook")
async def webhook(request: Request) -> dict[str, Any]:
    text = (await request.body()).decode()
    try:
        stripe.WebhookSignature.verify_header(
            text,
            request.headers.get("Stripe-Signature", ""),
            _settings.stripe_webhook_secret,
            _settings.webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError:
        raise HTTPException(400, "invalid signature") from None
    event = parse_payment_event(json.loads(text))
    if event is None or event.workflow_id is None:
        raise HTTPException(400, "not an event for a workflow")
    client = await _temporal()
    await client.get_workflow_handle(event.workflow_id).signal("stripe_event", event)
    return {"handled": True}
