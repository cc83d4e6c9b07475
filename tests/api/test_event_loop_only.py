"""Every route and dependency runs on the event loop: FastAPI runs a plain `def` endpoint or
dependency in its thread pool, a hop to another thread and back on each request (the
benchmark's profile of the API found its pool busy with attribute reads)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api.main import create_app
from infra.settings import Settings


def _runs_on_the_loop(call: Any) -> bool:
    if inspect.isclass(call):  # a class dependency is instantiated: its __init__ runs in the pool
        return False
    target = call if inspect.isroutine(call) else getattr(call, "__call__", call)  # noqa: B004
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def _calls(dependant: Dependant) -> Iterator[Any]:
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)  # FastAPI keeps included routers
        if included is not None:
            yield from _api_routes(included.routes)


def test_no_route_or_dependency_runs_in_the_thread_pool() -> None:
    routes = list(_api_routes(create_app(Settings()).http.routes))
    in_the_pool = sorted(
        {
            f"{route.path}: {getattr(call, '__qualname__', type(call).__qualname__)}"
            for route in routes
            for call in _calls(route.dependant)
            if not _runs_on_the_loop(call)
        }
    )
    assert len(routes) > 20  # the walk sees the app's routes
    assert in_the_pool == []
