"""What the error handlers answer, whatever the exception carried."""

from __future__ import annotations

import json
import logging

import pytest
from starlette.requests import Request

from api.errors import checkout_failed
from api.sagas import CheckoutFailed


def request_to(path: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": path, "headers": []})


async def test_a_failed_checkout_is_a_409_without_stripes_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stripe_text = "StripeRequestRefused: No such payment_intent: 'pi_3Sec' (request req_Zx81)"
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = await checkout_failed(
            request_to("/api/payments/create-intent"), CheckoutFailed(stripe_text)
        )
    assert response.status_code == 409
    assert json.loads(bytes(response.body)) == {
        "detail": "this checkout failed; operators can find it in Temporal as its workflow"
    }
    assert stripe_text in caplog.text  # kept for the operators, in the log
