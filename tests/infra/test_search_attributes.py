"""The worker registers the saga's search attributes, or says what an operator must run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
    ListSearchAttributesResponse,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from infra.search_attributes import ensure_search_attributes, registration_commands
from workflows.search_attributes import CHECKOUT_SEARCH_ATTRIBUTES, dev_server_flags, type_name

NAMES = {key.name for key in CHECKOUT_SEARCH_ATTRIBUTES}


@dataclass
class OperatorService:
    """Stands in for a server's operator service, answering as told."""

    listed: dict[str, int] | None = None
    refusal: RPCStatusCode | None = None
    added: list[str] = field(default_factory=list)

    async def list_search_attributes(
        self, request: ListSearchAttributesRequest
    ) -> ListSearchAttributesResponse:
        if self.listed is None:
            raise RPCError("unimplemented", RPCStatusCode.UNIMPLEMENTED, b"")
        return ListSearchAttributesResponse(custom_attributes=self.listed)  # type: ignore[arg-type]

    async def add_search_attributes(self, request: AddSearchAttributesRequest) -> None:
        if self.refusal is not None:
            raise RPCError("not allowed here", self.refusal, b"")
        self.added += list(request.search_attributes)


@dataclass
class FakeClient:
    operator_service: OperatorService


def client_of(service: OperatorService) -> Client:
    return cast(Client, FakeClient(service))


def wanted() -> dict[str, int]:
    return {key.name: int(key.indexed_value_type) for key in CHECKOUT_SEARCH_ATTRIBUTES}


async def test_registering_on_the_dev_server_is_idempotent(
    temporal_dev: WorkflowEnvironment,
) -> None:
    client = temporal_dev.client
    assert await ensure_search_attributes(client, client.namespace)
    assert await ensure_search_attributes(client, client.namespace)


async def test_only_missing_attributes_are_added_one_by_one() -> None:
    service = OperatorService(listed={"ArtworkId": wanted()["ArtworkId"]})
    assert await ensure_search_attributes(client_of(service), "default")
    assert set(service.added) == NAMES - {"ArtworkId"}


async def test_where_registering_is_not_allowed_the_log_says_what_to_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Temporal Cloud answers PERMISSION_DENIED: attributes go through tcld there."""
    service = OperatorService(refusal=RPCStatusCode.PERMISSION_DENIED)
    with caplog.at_level(logging.ERROR, logger="infra.search_attributes"):
        assert not await ensure_search_attributes(client_of(service), "payments.a1b2c")
    logged = caplog.text
    assert "PERMISSION_DENIED" in logged
    assert registration_commands("payments.a1b2c") in logged
    assert "tcld namespace search-attributes add --namespace payments.a1b2c" in logged
    for key in CHECKOUT_SEARCH_ATTRIBUTES:
        assert f"--name {key.name} --type {type_name(key)}" in logged
        assert f'--sa "{key.name}={type_name(key)}"' in logged


async def test_an_attribute_of_another_type_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    listed: dict[str, Any] = {**wanted(), "BuyerId": 2}  # registered as a Keyword
    service = OperatorService(listed=listed)
    with caplog.at_level(logging.ERROR, logger="infra.search_attributes"):
        assert not await ensure_search_attributes(client_of(service), "default")
    assert "BuyerId is 2, not Int" in caplog.text
    assert service.added == []


def test_the_dev_server_flags_name_every_attribute_with_its_type() -> None:
    flags = dev_server_flags()
    assert flags[::2] == ["--search-attribute"] * len(CHECKOUT_SEARCH_ATTRIBUTES)
    assert {flag.split("=")[0] for flag in flags[1::2]} == NAMES
    assert "ArtworkId=Int" in flags and "AmountDue=Double" in flags
