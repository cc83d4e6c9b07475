"""The winner pays on the checkout page, in a real browser, with localstripe's Stripe.js: each
scenario of the issue, a screenshot each under .artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, ViewportSize, expect
from temporalio.testing import WorkflowEnvironment

from infra.db import SessionFactory
from tests.api.conftest import Closed, closed_auction
from tests.support.polling import eventually
from tests.support.stack import Stack, stack_on, token_for, unique

pytestmark = pytest.mark.browser

VISA = "4242424242424242"
DECLINED_WHEN_CHARGED = "4000000000000341"
REFUSED_WHEN_ENTERED = "4000000000000002"
THREE_D_SECURE = "4000002760003184"
PHONE: ViewportSize = {"width": 390, "height": 844}
SETTLES = 30_000  # ms: a webhook, the saga's own look at Stripe, then the page's next poll


def stack_settings(localstripe_url: str) -> dict[str, object]:
    return {"stripe_js_url": f"{localstripe_url}/js.stripe.com/v3/"}


@pytest_asyncio.fixture(scope="module")
async def stack(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    async with stack_on(
        temporal_dev, sessions, database_url, localstripe_url, **stack_settings(localstripe_url)
    ) as running:
        yield running


async def open_checkout(browser: Browser, stack: Stack, bid_id: int, who: str) -> Page:
    page = await browser.new_page(viewport=PHONE)
    token = token_for(stack.settings, who)
    await page.goto(f"{stack.http.base_url}/checkout/{bid_id}#token={token}")
    return page


async def enter_card(page: Page, number: str) -> None:
    for placeholder, value in (
        ("number", number),
        ("exp_month", "12"),
        ("exp_year", "34"),
        ("cvc", "123"),
        ("postal_code", "75001"),
    ):
        await page.fill(f'#card-element input[placeholder="{placeholder}"]', value)


async def artwork_status(stack: Stack, closed: Closed) -> str:
    answer = await stack.get(f"/api/artworks/{closed.artwork_id}", closed.buyer)
    status: str = answer.json()["status"]
    return status


async def becomes(stack: Stack, closed: Closed, status: str) -> None:
    await eventually(lambda: artwork_status(stack, closed), lambda s: s == status, what=status)


async def test_the_winner_pays_with_a_card_and_the_artwork_is_sold(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack, "1287.00")
    checkout_url = f"{stack.settings.public_base_url}/checkout/{closed.bid_id}"
    assert closed.close["checkout_url"] == checkout_url  # the close answers where to pay
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer)
    await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
    await expect(page.locator("#title")).to_have_text("Blue hour")
    await expect(page.locator("#hammer-price")).to_have_text("$1,287.00")
    await expect(page.locator("#total")).to_have_text(f"${Decimal(closed.close['amount']):,}")
    assert "#token" not in page.url  # the token left the address bar
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^\d{1,2}:\d{2}$"))
    await enter_card(page, VISA)
    # With the keyboard: Enter in the card's last field submits the form.
    await page.press('#card-element input[placeholder="postal_code"]', "Enter")
    await expect(page.locator("main")).to_have_attribute("data-state", "paid", timeout=SETTLES)
    await expect(page.locator("#message")).to_contain_text("the artwork is yours")
    await page.screenshot(path=screenshots / "checkout-paid.png", full_page=True)
    await becomes(stack, closed, "sold")
    await page.close()


async def test_a_card_declined_when_charged_shows_why_and_another_card_pays(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer)
    await enter_card(page, DECLINED_WHEN_CHARGED)
    await page.click("#pay-button")
    await expect(page.locator("main")).to_have_attribute("data-state", "declined", timeout=SETTLES)
    await expect(page.locator("#message")).to_contain_text("declined")
    await page.screenshot(path=screenshots / "checkout-declined-when-charged.png", full_page=True)
    number = page.locator('#card-element input[placeholder="number"]')
    await expect(number).to_have_value("")
    await expect(number).to_be_focused()
    await enter_card(page, VISA)
    await page.click("#pay-button")
    await expect(page.locator("main")).to_have_attribute("data-state", "paid", timeout=SETTLES)
    await becomes(stack, closed, "sold")
    await page.close()


async def test_a_card_refused_when_entered_shows_why_at_once(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer)
    await enter_card(page, REFUSED_WHEN_ENTERED)
    await page.click("#pay-button")
    await expect(page.locator("main")).to_have_attribute("data-state", "declined", timeout=5_000)
    await expect(page.locator("#message")).to_contain_text("declined")
    await page.screenshot(path=screenshots / "checkout-refused-when-entered.png", full_page=True)
    await expect(page.locator("#pay-button")).to_be_enabled()
    assert await artwork_status(stack, closed) == "pending_payment"
    await page.close()


async def test_a_3d_secure_card_is_authenticated_then_paid(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer)
    await enter_card(page, THREE_D_SECURE)
    await page.click("#pay-button")
    complete = page.get_by_role("button", name="Complete authentication")
    await expect(complete).to_be_visible(timeout=10_000)
    await page.screenshot(path=screenshots / "checkout-3d-secure.png", full_page=True)
    # localstripe asks when the card is set up and again when it is charged.
    while await page.get_attribute("main", "data-state") != "paid":
        if await complete.count():
            await complete.first.click()
        await page.wait_for_timeout(300)
    await becomes(stack, closed, "sold")
    await page.close()


async def test_another_user_sees_not_your_checkout_and_an_unknown_bid_is_a_404(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, unique("intruder"))
    await expect(page.locator("main")).to_have_attribute("data-state", "forbidden")
    await expect(page.locator("#message")).to_contain_text("not your checkout")
    await expect(page.locator("#pay-form")).to_be_hidden()
    await page.screenshot(path=screenshots / "checkout-not-yours.png", full_page=True)
    answer = await page.goto(f"{stack.http.base_url}/checkout/999999999")
    assert answer is not None and answer.status == 404
    await expect(page.locator("h1")).to_have_text("Checkout not found")
    await page.close()


async def test_the_deadline_passing_with_the_page_open_says_expired(
    browser: Browser,
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
    screenshots: Path,
) -> None:
    async with stack_on(
        temporal_dev,
        sessions,
        database_url,
        localstripe_url,
        payment_timeout_seconds=8,
        **stack_settings(localstripe_url),
    ) as short:
        closed = await closed_auction(short)
        page = await open_checkout(browser, short, closed.bid_id, closed.buyer)
        await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
        await expect(page.locator("main")).to_have_attribute(
            "data-state", "expired", timeout=20_000
        )
        await becomes(short, closed, "active")
        await expect(page.locator("#message")).to_contain_text("back on sale", timeout=10_000)
        await page.screenshot(path=screenshots / "checkout-expired.png", full_page=True)
        await page.close()
