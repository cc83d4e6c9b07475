"""Nothing secret in Temporal: a checkout's history, read as Temporal stores it, holds no client
secret and no email address; the codec endpoint, and the CLI through it, read it back."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from devstack.processes import tool
from infra.db import SessionFactory
from tests.support.buyer import pay
from tests.support.polling import eventually
from tests.support.stack import Stack, stack_on, temporal_address, unique
from workflows.types import saga_workflow_id

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def stack(
    database_url: str,
    localstripe_url: str,
    sessions: SessionFactory,
    temporal_dev: WorkflowEnvironment,
) -> AsyncIterator[Stack]:
    async with stack_on(temporal_dev, sessions, database_url, localstripe_url) as running:
        yield running


async def sold_checkout(stack: Stack) -> tuple[str, str, str, str]:
    """A whole checkout, paid: (workflow id, client secret, buyer's and seller's emails)."""
    seller, buyer = unique("seller"), unique("buyer")
    artwork = await stack.post(
        "/api/artworks", seller, {"title": "Night train", "starting_price": "100.00"}
    )
    artwork_id = artwork.json()["id"]
    bid = await stack.post(f"/api/artworks/{artwork_id}/bids", buyer, {"amount": "150.00"})
    assert (await stack.post(f"/api/artworks/{artwork_id}/close", seller)).status_code == 200
    intent = await stack.post("/api/payments/create-intent", buyer, {"bid_id": bid.json()["id"]})
    assert intent.status_code == 200, intent.text
    client_secret = intent.json()["client_secret"]
    assert "_secret_" in client_secret
    assert await pay(stack.stripe, intent.json()["payment_intent_id"]) == "succeeded"

    workflow_id = saga_workflow_id(bid.json()["id"])
    handle = stack.temporal.get_workflow_handle(workflow_id)
    await eventually(
        lambda: handle.describe(),
        lambda described: described.status == WorkflowExecutionStatus.COMPLETED,
        what="the checkout sold",
    )
    return workflow_id, client_secret, f"{buyer}@example.com", f"{seller}@example.com"


async def raw_history(stack: Stack, workflow_id: str) -> tuple[bytes, dict[str, Any]]:
    """The history through a client that has no codec: the bytes Temporal stores."""
    without_codec = await Client.connect(
        temporal_address(stack.temporal), data_converter=pydantic_data_converter
    )
    history = await without_codec.get_workflow_handle(workflow_id).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    return raw, json.loads(history.to_json())


def payloads_in(node: Any) -> Iterator[dict[str, Any]]:
    """Every Payload of a history in protobuf JSON, as the codec protocol carries them.

    Left out, because Temporal itself writes or reads them: search attributes (the server
    indexes them; they hold only ids, the phase, the deadline and the amount due) and the
    SDK's patch markers (they hold the patch's name).
    """
    if isinstance(node, dict):
        if isinstance(node.get("metadata"), dict) and "encoding" in node["metadata"]:
            yield node
            return
        if node.get("markerName") == "core_patch":
            return
        for key, value in node.items():
            if key != "searchAttributes":
                yield from payloads_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from payloads_in(value)


async def test_the_stored_history_holds_no_secret_and_the_codec_reads_it_back(
    stack: Stack,
) -> None:
    workflow_id, client_secret, *emails = await sold_checkout(stack)
    raw, history = await raw_history(stack, workflow_id)

    assert client_secret.encode() not in raw
    assert b"_secret_" not in raw  # no client secret of any intent
    assert b"@example.com" not in raw  # every address of the suite
    for email in emails:
        assert email.encode() not in raw
    stored = list(payloads_in(history))
    assert stored
    assert {base64.b64decode(p["metadata"]["encoding"]) for p in stored} == {b"binary/encrypted"}

    operator = stack.headers(unique("operator"), roles=["operator"])
    decoded = await stack.http.post(
        "/codec/decode",
        json={"payloads": stored},
        headers={**operator, "X-Namespace": stack.settings.temporal_namespace},
    )
    assert decoded.status_code == 200, decoded.text
    values = [base64.b64decode(p.get("data", "")) for p in decoded.json()["payloads"]]
    assert any(client_secret.encode() in value for value in values)
    results = [json.loads(value) for value in values if value.startswith(b"{")]
    assert any(result.get("phase") == "sold" for result in results)


async def test_the_cli_decodes_through_the_codec_endpoint(stack: Stack) -> None:
    workflow_id, client_secret, *_ = await sold_checkout(stack)
    token = stack.headers(unique("operator"), roles=["operator"])["Authorization"]
    show = [
        tool("temporal"), "workflow", "show", "--output", "json",
        "--address", temporal_address(stack.temporal), "-w", workflow_id,
    ]  # fmt: skip
    endpoint = str(stack.http.base_url).rstrip("/") + "/codec"

    # Not subprocess.run: the API the CLI calls answers on this very event loop.
    stored = await run(*show)
    assert client_secret not in stored
    assert base64.b64encode(b"binary/encrypted").decode() in stored
    decoded = json.loads(await run(*show, "--codec-endpoint", endpoint, "--codec-auth", token))
    payloads = list(payloads_in(decoded))
    assert b"binary/encrypted" not in {
        base64.b64decode(p["metadata"]["encoding"]) for p in payloads
    }
    assert any(client_secret.encode() in base64.b64decode(p.get("data", "")) for p in payloads)


async def run(*command: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()
