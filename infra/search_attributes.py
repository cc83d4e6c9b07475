"""Registers the saga's search attributes in its namespace, where the server lets us.

The saga upserts them as it moves, and Temporal refuses an upsert of an attribute the
namespace does not know: the workflow task then fails, again and again, until someone
registers it. So the worker makes sure of them when it starts, and where it may not (Temporal
Cloud registers attributes through its control plane), it logs what an operator must run.
"""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.search_attributes import CHECKOUT_SEARCH_ATTRIBUTES, type_name

log = logging.getLogger(__name__)


def registration_commands(namespace: str) -> str:
    """What to run once per namespace: Temporal's CLI, or tcld on Temporal Cloud."""
    # The CLI pairs each --name with the --type in the same position.
    cli = f"  temporal operator search-attribute create --namespace {namespace} " + " ".join(
        f"--name {key.name} --type {type_name(key)}" for key in CHECKOUT_SEARCH_ATTRIBUTES
    )
    tcld = f"  tcld namespace search-attributes add --namespace {namespace} " + " ".join(
        f'--sa "{key.name}={type_name(key)}"' for key in CHECKOUT_SEARCH_ATTRIBUTES
    )
    return "\n".join([cli, "or, on Temporal Cloud:", tcld])


async def ensure_search_attributes(client: Client, namespace: str) -> bool:
    """Registers the attributes `namespace` lacks; True once every one is known as its type.

    Registering is idempotent: attributes already there are left as they are.
    """
    registered = await _registered(client, namespace)
    wrong = [
        f"{key.name} is {registered[key.name]}, not {type_name(key)}"
        for key in CHECKOUT_SEARCH_ATTRIBUTES
        if registered is not None
        and key.name in registered
        and registered[key.name] != int(key.indexed_value_type)
    ]
    if wrong:
        # Temporal cannot retype an attribute: it must be removed first, then created again.
        log.error(
            "Namespace %s holds search attributes of other types (%s): checkouts cannot be "
            "indexed until they are removed (`temporal operator search-attribute remove`) and "
            "created again:\n%s",
            namespace,
            "; ".join(wrong),
            registration_commands(namespace),
        )
    missing = [
        key
        for key in CHECKOUT_SEARCH_ATTRIBUTES
        if registered is None or key.name not in registered
    ]
    for key in missing:
        # One at a time: some servers refuse a whole request for one attribute they have.
        request = AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={key.name: IndexedValueType.ValueType(int(key.indexed_value_type))},
        )
        try:
            await client.operator_service.add_search_attributes(request)
        except RPCError as refused:
            if refused.status is RPCStatusCode.ALREADY_EXISTS:
                continue
            log.error(
                "Could not register the search attribute %s in namespace %s (%s: %s). Until "
                "every one exists, the API cannot start checkouts nor the saga index them. "
                "Register them once:\n%s",
                key.name,
                namespace,
                refused.status.name,
                refused.message,
                registration_commands(namespace),
            )
            return False
    if missing:
        log.info("Registered search attributes in namespace %s", namespace)
    return not wrong


async def _registered(client: Client, namespace: str) -> dict[str, int] | None:
    """The namespace's custom attributes and their types; None where the server won't say."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as refused:
        log.debug("Cannot list search attributes (%s): registering each", refused.message)
        return None
    return {name: int(kind) for name, kind in listed.custom_attributes.items()}
