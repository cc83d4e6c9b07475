"""How uvicorn serves the API in the image and under compose: read by uvicorn's own command
line, so an option it does not know, or a value it would refuse, fails here too."""

from __future__ import annotations

import re
from typing import Any

import pytest
from uvicorn.main import main as uvicorn_command

from tests.infra.test_deployment_files import SERVICES, commands

# How long a load balancer commonly keeps an idle connection to its targets (AWS ALB: 60 s).
BALANCER_IDLE_SECONDS = 60
# What Docker gives a container between SIGTERM and SIGKILL when compose says nothing.
DOCKER_STOP_SECONDS = 10
# The longest a Socket.IO long poll stays open (python-engineio's ping interval).
LONG_POLL_SECONDS = 25


def uvicorn_options(service: str) -> dict[str, Any]:
    argv = commands()[service]
    assert argv[0] == "uvicorn", argv
    return dict(uvicorn_command.make_context("uvicorn", argv[1:]).params)


def stop_grace_seconds(service: str) -> int:
    period = str(SERVICES[service].get("stop_grace_period", f"{DOCKER_STOP_SECONDS}s"))
    match = re.fullmatch(r"(\d+)s", period)
    assert match, f"{service}: stop_grace_period {period} is not in seconds"
    return int(match[1])


@pytest.mark.parametrize("service", ["Dockerfile CMD", "api"])
def test_idle_connections_outlive_the_load_balancers(service: str) -> None:
    """The balancer must be the one to close an idle connection: closed by uvicorn first, a
    request the balancer sends on it at that moment is answered 502."""
    assert uvicorn_options(service)["timeout_keep_alive"] > BALANCER_IDLE_SECONDS


@pytest.mark.parametrize("service", ["Dockerfile CMD", "api"])
def test_a_shutdown_is_bounded_below_a_long_poll(service: str) -> None:
    graceful = uvicorn_options(service)["timeout_graceful_shutdown"]
    assert graceful is not None and 0 < graceful < LONG_POLL_SECONDS


def test_compose_lets_the_api_finish_its_shutdown_before_killing_it() -> None:
    graceful = uvicorn_options("api")["timeout_graceful_shutdown"]
    # The lifespan's own shutdown (the relay, the sockets, the pool) comes after.
    assert stop_grace_seconds("api") >= graceful + 5


@pytest.mark.parametrize("service", ["Dockerfile CMD", "api"])
def test_forwarded_headers_are_believed_only_from_a_named_proxy(service: str) -> None:
    """The port is published: trusting every peer's X-Forwarded-For and -Proto would let any
    client claim another address or scheme."""
    assert uvicorn_options(service)["forwarded_allow_ips"] in (None, "127.0.0.1")
