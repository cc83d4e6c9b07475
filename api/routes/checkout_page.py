"""`GET /checkout/{bid_id}`: the winner's checkout page, HTML from a template and one script.

The page needs no sign-in to load: the buyer's token travels in the URL fragment, which the
browser never sends, and the page's script calls the API with it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.deps import ServicesDep, SessionDep
from api.schemas import BIGINT_MAX
from infra.tables import Bid

HERE = Path(__file__).resolve().parents[1] / "checkout"
ASSETS = "/checkout-assets"
_templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)

router = APIRouter(include_in_schema=False)


@router.get("/checkout/{bid_id}", response_class=HTMLResponse)
async def checkout_page(bid_id: str, session: SessionDep, services: ServicesDep) -> HTMLResponse:
    number = int(bid_id) if bid_id.isdigit() and 1 <= len(bid_id) <= 19 else 0
    if not 1 <= number <= BIGINT_MAX or await session.get(Bid, number) is None:
        page = _templates.get_template("not_found.html.j2").render(assets=ASSETS)
        return HTMLResponse(page, status_code=404)
    settings = services.settings
    page = _templates.get_template("checkout.html.j2").render(
        bid_id=number,
        assets=ASSETS,
        stripe_js_url=settings.stripe_js_url,
        publishable_key=settings.stripe_publishable_key,
    )
    return HTMLResponse(
        page, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=HERE / "static"), name="checkout-assets")
