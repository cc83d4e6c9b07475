"""The winner pays on the checkout page, in a real browser, with localstripe's Stripe.js: each
scenario of the issue, a screenshot each under .artifacts/screenshots/."""

from __future__ import annotations

import json
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
SETTLES = 30_000  # ms: a webhook, the saga's own look at Stripe, then the page hearing of it
# With the socket connected the page reads the checkout again only every 10 minutes: within a
# test, only a live event explains a change the page shows.
ONLY_THE_SOCKET = {"livePollMs": 600_000}


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


async def open_checkout(
    browser: Browser,
    stack: Stack,
    bid_id: int,
    who: str,
    *,
    timing: dict[str, int] | None = None,
    without_socket: bool = False,
) -> Page:
    page = await browser.new_page(viewport=PHONE)
    if timing is not None:
        await page.add_init_script(f"window.checkoutTiming = {json.dumps(timing)};")
    if without_socket:
        await page.route("**/socket.io/**", lambda route: route.abort())
    token = token_for(stack.settings, who)
    await page.goto(f"{stack.http.base_url}/checkout/{bid_id}#token={token}")
    return page


async def following_live(page: Page) -> None:
    """The socket is connected and watches the artwork: the page polls only rarely now."""
    await expect(page.locator("main")).to_have_attribute("data-live", "socket", timeout=10_000)


async def enter_card(page: Page, number: str) -> None:
    """Types the card as a person does, key by key (the number with its spaces)."""
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    for label, value in (
        ("Card number", spaced),
        ("Expiry month", "12"),
        ("Expiry year, two digits", "34"),
        ("Security code", "123"),
        ("Postcode", "75001"),
    ):
        field = page.get_by_label(label, exact=True)
        await field.fill("")
        await field.press_sequentially(value)


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
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer, timing=ONLY_THE_SOCKET)
    await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
    await following_live(page)
    await expect(page.locator("#title")).to_have_text("Blue hour")
    await expect(page.locator("#hammer-price")).to_have_text("$1,287.00")
    await expect(page.locator("#total")).to_have_text(f"${Decimal(closed.close['amount']):,}")
    assert "#token" not in page.url  # the token left the address bar
    await expect(page.locator("#countdown")).to_have_text(re.compile(r"^\d{1,2}:\d{2}$"))
    await enter_card(page, VISA)
    # With the keyboard: Enter in the card's last field submits the form.
    await page.get_by_label("Postcode", exact=True).press("Enter")
    await expect(page.locator("main")).to_have_attribute("data-state", "paid", timeout=SETTLES)
    # The saga's `artwork_sold` reached the page through the socket; no poll was due.
    await expect(page.locator("main")).to_have_attribute("data-updated-by", "socket")
    await expect(page.locator("main")).to_have_attribute("data-last-event", "artwork_sold")
    await expect(page.locator("#message")).to_contain_text("the artwork is yours")
    await expect(page.locator("main")).to_have_attribute("data-live", "stopped")
    await page.screenshot(path=screenshots / "checkout-paid.png", full_page=True)
    await becomes(stack, closed, "sold")
    await page.close()


async def test_a_card_declined_when_charged_shows_why_and_another_card_pays(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer, timing=ONLY_THE_SOCKET)
    await following_live(page)
    await enter_card(page, DECLINED_WHEN_CHARGED)
    await page.click("#pay-button")
    await expect(page.locator("main")).to_have_attribute("data-state", "declined", timeout=SETTLES)
    await expect(page.locator("#message")).to_contain_text("declined")
    # Stripe's answer showed at once; the saga's record of it follows as `payment_failed`.
    await expect(page.locator("main")).to_have_attribute(
        "data-last-event", "payment_failed", timeout=SETTLES
    )
    await expect(page.locator("main")).to_have_attribute("data-state", "declined")
    await expect(page.locator("#message")).to_contain_text("try another card")
    await page.screenshot(path=screenshots / "checkout-declined-when-charged.png", full_page=True)
    number = page.get_by_label("Card number", exact=True)
    await expect(number).to_have_value("")
    await expect(number).to_be_focused()
    await enter_card(page, VISA)
    await page.click("#pay-button")
    await expect(page.locator("main")).to_have_attribute("data-state", "paid", timeout=SETTLES)
    await expect(page.locator("main")).to_have_attribute("data-last-event", "artwork_sold")
    await becomes(stack, closed, "sold")
    await page.close()


async def test_without_the_socket_the_page_polls_and_still_sees_the_sale(
    browser: Browser, stack: Stack
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer, without_socket=True)
    await expect(page.locator("main")).to_have_attribute("data-live", "polling", timeout=10_000)
    await enter_card(page, VISA)
    await page.click("#pay-button")
    await expect(page.locator("main")).to_have_attribute("data-state", "paid", timeout=SETTLES)
    await expect(page.locator("main")).to_have_attribute("data-updated-by", "poll")
    assert await page.get_attribute("main", "data-last-event") is None
    await becomes(stack, closed, "sold")
    await page.close()


async def test_a_card_refused_when_entered_shows_why_at_once(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await open_checkout(browser, stack, closed.bid_id, closed.buyer)
    # Pay before entering anything: the page asks for the card, and Stripe is not called.
    await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
    await page.click("#pay-button")
    await expect(page.locator("#message")).to_have_text("Enter the card number, then press Pay.")
    await expect(page.get_by_label("Card number", exact=True)).to_be_focused()
    await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
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


async def test_opened_from_the_emails_link_the_buyer_signs_in_on_the_page(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    closed = await closed_auction(stack)
    page = await browser.new_page(viewport=PHONE)
    # The link of the `payment_required` email: the page's address, no token.
    await page.goto(
        closed.close["checkout_url"].replace(
            stack.settings.public_base_url, str(stack.http.base_url)
        )
    )
    await expect(page.locator("main")).to_have_attribute("data-state", "signed_out")
    await expect(page.locator("#token-input")).to_be_focused()
    await page.screenshot(path=screenshots / "checkout-sign-in.png", full_page=True)
    await page.keyboard.type(token_for(stack.settings, closed.buyer))
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
    await expect(page.locator("#sign-in")).to_be_hidden()
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
        page = await open_checkout(
            browser, short, closed.bid_id, closed.buyer, timing=ONLY_THE_SOCKET
        )
        await expect(page.locator("main")).to_have_attribute("data-state", "awaiting_payment")
        await following_live(page)
        await expect(page.locator("main")).to_have_attribute(
            "data-state", "expired", timeout=20_000
        )
        await becomes(short, closed, "active")
        # The saga's `bidding_reopened`, heard through the socket.
        await expect(page.locator("#message")).to_contain_text("back on sale", timeout=10_000)
        await expect(page.locator("main")).to_have_attribute("data-last-event", "bidding_reopened")
        await page.screenshot(path=screenshots / "checkout-expired.png", full_page=True)
        await page.close()
