from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.api.conftest import closed_auction, open_auction
from tests.support.buyer import pay
from tests.support.polling import eventually
from tests.support.stack import Stack, unique
from workflows.types import saga_workflow_id


def field_of(response_json: dict[str, object]) -> list[object]:
    detail = response_json["detail"]
    assert isinstance(detail, list)
    return [entry["loc"][-1] for entry in detail]


async def test_no_token_or_a_forged_one_is_401(stack: Stack) -> None:
    body = {"title": "x", "starting_price": "10.00"}
    assert (await stack.http.post("/api/artworks", json=body)).status_code == 401
    forged = {"Authorization": "Bearer not.a.jwt"}
    assert (await stack.http.post("/api/artworks", json=body, headers=forged)).status_code == 401


async def test_an_artwork_is_created_with_its_id_and_status(stack: Stack) -> None:
    seller = unique("seller")
    created = await stack.post("/api/artworks", seller, {"title": "Dune", "starting_price": 1250})
    assert created.status_code == 201
    artwork = created.json()
    assert artwork["status"] == "active"
    assert artwork["starting_price"] == "1250.00"  # money is a decimal string
    assert artwork["currency"] == "usd"
    fetched = await stack.get(f"/api/artworks/{artwork['id']}", seller)
    assert fetched.json() == artwork


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "x", "starting_price": "10.001"}, "starting_price"),
        ({"title": "x", "starting_price": "-5"}, "starting_price"),
        ({"title": "x", "starting_price": "100000000.00"}, "starting_price"),
        ({"title": "x", "starting_price": "ten"}, "starting_price"),
        ({"title": "x", "starting_price": "990000.00"}, "starting_price"),  # over Stripe's max
        ({"title": "x", "starting_price": "0.10"}, "starting_price"),  # under Stripe's minimum
        ({"title": "x", "starting_price": "10.50", "currency": "jpy"}, "starting_price"),
        ({"title": "x", "starting_price": "10.00", "currency": "xyz"}, "currency"),
        ({"title": "", "starting_price": "10.00"}, "title"),
    ],
)
async def test_bad_artworks_are_422_naming_the_field(
    stack: Stack, body: dict[str, str], field: str
) -> None:
    response = await stack.post("/api/artworks", unique("seller"), body)
    assert response.status_code == 422, response.text
    assert field in field_of(response.json())


async def test_bids_must_rise_and_respect_the_starting_price(stack: Stack) -> None:
    seller, artwork_id = await open_auction(stack, "100.00")
    path = f"/api/artworks/{artwork_id}/bids"
    below = await stack.post(path, unique("buyer"), {"amount": "99.99"})
    assert below.status_code == 422
    assert field_of(below.json()) == ["amount"]
    first = await stack.post(path, unique("buyer"), {"amount": 100})
    assert first.status_code == 201
    assert first.json()["status"] == "active"
    assert first.json()["amount"] == "100.00"
    equal = await stack.post(path, unique("buyer"), {"amount": "100.00"})
    assert equal.status_code == 422
    higher = await stack.post(path, unique("buyer"), {"amount": "100.01"})
    assert higher.status_code == 201
    artwork = (await stack.get(f"/api/artworks/{artwork_id}", seller)).json()
    assert artwork["highest_bid"] == "100.01"


@pytest.mark.parametrize("amount", ["12.345", "0", "-1", "1e12", "abc", None])
async def test_bad_bid_amounts_are_422(stack: Stack, amount: object) -> None:
    _, artwork_id = await open_auction(stack, "10.00")
    response = await stack.post(
        f"/api/artworks/{artwork_id}/bids", unique("buyer"), {"amount": amount}
    )
    assert response.status_code == 422
    assert field_of(response.json()) == ["amount"]


async def test_sellers_cannot_bid_on_their_own_artwork(stack: Stack) -> None:
    seller, artwork_id = await open_auction(stack)
    response = await stack.post(f"/api/artworks/{artwork_id}/bids", seller, {"amount": "900.00"})
    assert response.status_code == 403


async def test_unknown_artwork_is_404(stack: Stack) -> None:
    response = await stack.post("/api/artworks/999999999/bids", unique("buyer"), {"amount": "9.00"})
    assert response.status_code == 404


async def test_bids_are_refused_with_409_while_payment_is_pending(stack: Stack) -> None:
    closed = await closed_auction(stack, "600.00")
    assert closed.close["status"] == "pending_payment"
    assert closed.close["winning_bid_id"] == closed.bid_id
    artwork = (await stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller)).json()
    assert artwork["status"] == "pending_payment"
    assert artwork["winning_bid_id"] == closed.bid_id

    late = await stack.post(
        f"/api/artworks/{closed.artwork_id}/bids", unique("buyer"), {"amount": "5000.00"}
    )
    assert late.status_code == 409
    assert "pending_payment" in late.json()["detail"]


async def test_only_the_seller_or_an_operator_closes(stack: Stack) -> None:
    _, artwork_id = await open_auction(stack)
    await stack.post(f"/api/artworks/{artwork_id}/bids", unique("buyer"), {"amount": "700.00"})
    stranger = await stack.post(f"/api/artworks/{artwork_id}/close", unique("stranger"))
    assert stranger.status_code == 403
    operator = unique("operator")
    closed = await stack.http.post(
        f"/api/artworks/{artwork_id}/close", headers=stack.headers(operator, roles=["operator"])
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "pending_payment"
    stranger_again = await stack.post(f"/api/artworks/{artwork_id}/close", unique("stranger"))
    assert stranger_again.status_code == 403


async def test_a_repeated_close_answers_what_the_first_close_did(stack: Stack) -> None:
    """A seller whose close timed out on their side retries it and learns the outcome."""
    closed = await closed_auction(stack, "640.00")
    assert closed.close["amount"] is not None
    again = await stack.post(f"/api/artworks/{closed.artwork_id}/close", closed.seller)
    assert again.status_code == 200, again.text
    assert again.json() == closed.close
    by_operator = await stack.http.post(
        f"/api/artworks/{closed.artwork_id}/close",
        headers=stack.headers(unique("operator"), roles=["operator"]),
    )
    assert by_operator.json() == closed.close


async def test_a_repeated_close_restarts_a_checkout_stopped_by_an_operator(stack: Stack) -> None:
    closed = await closed_auction(stack, "655.00")
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))
    await handle.terminate(reason="operator stopped it by mistake")
    again = await stack.post(f"/api/artworks/{closed.artwork_id}/close", closed.seller)
    assert again.status_code == 200, again.text
    assert again.json() == closed.close
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_closing_a_sold_artwork_again_answers_the_sale(stack: Stack) -> None:
    closed = await closed_auction(stack, "710.00")
    intent = await stack.post(
        "/api/payments/create-intent", closed.buyer, {"bid_id": closed.bid_id}
    )
    assert await pay(stack.stripe, intent.json()["payment_intent_id"]) == "succeeded"
    await eventually(
        lambda: stack.get(f"/api/artworks/{closed.artwork_id}", closed.seller),
        lambda r: r.json()["status"] == "sold",
        what="artwork sold after localstripe's webhook",
    )
    again = await stack.post(f"/api/artworks/{closed.artwork_id}/close", closed.seller)
    assert again.status_code == 200, again.text
    assert again.json() == {**closed.close, "status": "sold"}


async def test_closing_without_bids_is_409(stack: Stack) -> None:
    seller, artwork_id = await open_auction(stack)
    response = await stack.post(f"/api/artworks/{artwork_id}/close", seller)
    assert response.status_code == 409
    artwork = (await stack.get(f"/api/artworks/{artwork_id}", seller)).json()
    assert artwork["status"] == "active"
