"""The Temporal Web UI as an operator uses it, in a real browser: the list filtered by the
saga's search attributes finds a waiting checkout, and its page shows the saga's details
decoded through the API's codec endpoint (Temporal itself holds them encrypted)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, expect
from temporalio.client import Client

from devstack.processes import Service, free_port, start_temporal
from infra.db import SessionFactory
from infra.temporal import data_converter
from tests.api.conftest import Closed, closed_auction
from tests.support.polling import eventually
from tests.support.stack import Stack, codec_settings, running_stack, settings_for
from workflows.payment_saga import PaymentSagaWorkflow
from workflows.types import CheckoutPhase, saga_workflow_id

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class OperatorsView:
    stack: Stack
    ui: str  # the Web UI's origin
    api: str


@pytest_asyncio.fixture(scope="module")
async def view(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[OperatorsView]:
    """A dev server with its Web UI, and the whole service on it."""
    port, ui_port = free_port(), free_port()
    logs = tmp_path_factory.mktemp("temporal-ui")
    temporal: Service = await asyncio.to_thread(start_temporal, port, ui_port, None, logs)
    ui = f"http://127.0.0.1:{ui_port}"
    try:
        client = await Client.connect(
            f"127.0.0.1:{port}", data_converter=data_converter(codec_settings())
        )
        settings = settings_for(
            database_url,
            localstripe_url,
            temporal_address=f"127.0.0.1:{port}",
            temporal_ui_origin=ui,
        )
        async with running_stack(settings, sessions, client) as stack:
            yield OperatorsView(stack, ui, str(stack.http.base_url).rstrip("/"))
    finally:
        await asyncio.to_thread(temporal.stop)


async def signed_in_operator(browser: Browser, view: OperatorsView) -> Page:
    """An operator's browser: signed in at the codec endpoint, the UI told to decode there."""
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(f"{view.api}/codec/login")
    token = view.stack.headers("olga", roles=["operator"])["Authorization"].removeprefix("Bearer ")
    await page.fill("[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    # What the UI's codec settings save ("use my browser's setting", "include credentials").
    await page.goto(view.ui)
    for key, value in {
        "overrideRemoteCodecConfiguration": True,
        "endpoint": f"{view.api}/codec",
        "includeCredentials": True,
    }.items():
        await page.evaluate(
            "([key, value]) => localStorage.setItem(key, value)", [key, json.dumps(value)]
        )
    return page


async def waiting(stack: Stack) -> Closed:
    closed = await closed_auction(stack)
    handle = stack.temporal.get_workflow_handle(saga_workflow_id(closed.bid_id))
    await eventually(
        lambda: handle.query(PaymentSagaWorkflow.status),
        lambda status: status.phase is CheckoutPhase.AWAITING_PAYMENT,
        what="the checkout waiting for its buyer",
    )
    query = f'WorkflowId = "{handle.id}" AND CheckoutPhase = "awaiting_payment"'
    await eventually(
        lambda: stack.temporal.count_workflows(query),
        lambda counted: counted.count == 1,
        what="the checkout indexed as awaiting payment",
    )
    return closed


async def test_operators_find_a_waiting_checkout_and_read_its_decoded_details(
    browser: Browser, view: OperatorsView, screenshots: Path
) -> None:
    closed = await waiting(view.stack)
    workflow_id = saga_workflow_id(closed.bid_id)
    page = await signed_in_operator(browser, view)

    query = quote('CheckoutPhase="awaiting_payment"')
    await page.goto(f"{view.ui}/namespaces/default/workflows?query={query}")
    listed = page.get_by_role("link", name=workflow_id, exact=True)
    await expect(listed).to_be_visible(timeout=20_000)
    await page.screenshot(path=screenshots / "temporal-ui-awaiting-payment.png", full_page=True)

    await listed.click()
    # Stored encrypted, read back through the codec endpoint: the saga's input and the
    # summaries of its steps, then its current details (phase, amount, deadline).
    await expect(page.get_by_text('"hammer_price": "600.00"')).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("Create the PaymentIntent for 618.23 USD")).to_be_visible()
    await expect(page.get_by_text("binary/encrypted")).to_have_count(0)
    await page.screenshot(path=screenshots / "temporal-ui-checkout-decoded.png", full_page=True)
    await page.get_by_text("User Metadata", exact=True).click()
    # The UI renders the details' markdown in sandboxed frames of their own.
    details = page.frame_locator("iframe").last
    await expect(details.get_by_text("amount 618.23 USD")).to_be_visible(timeout=20_000)
    await expect(details.get_by_text("awaiting_payment")).to_be_visible()
    await page.screenshot(path=screenshots / "temporal-ui-checkout-details.png", full_page=True)
    await page.close()


async def test_without_the_codec_sign_in_the_ui_shows_nothing_decoded(
    browser: Browser, view: OperatorsView, screenshots: Path
) -> None:
    closed = await waiting(view.stack)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    workflow_id = saga_workflow_id(closed.bid_id)
    await page.goto(f"{view.ui}/namespaces/default/workflows/{workflow_id}")
    await expect(page.get_by_text(workflow_id).first).to_be_visible(timeout=20_000)
    await page.wait_for_timeout(2_000)  # the UI's decode attempts settle
    await expect(page.get_by_text('"hammer_price"')).to_have_count(0)
    await expect(page.get_by_text("Create the PaymentIntent for")).to_have_count(0)
    await page.screenshot(path=screenshots / "temporal-ui-not-signed-in.png", full_page=True)
    await page.close()
