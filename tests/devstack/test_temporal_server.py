"""`make dev` and the fault and load clusters start Temporal with the saga's attributes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from devstack.processes import free_port, start_temporal, tool
from workflows.search_attributes import CHECKOUT_SEARCH_ATTRIBUTES


def test_the_dev_server_starts_with_every_search_attribute(tmp_path: Path) -> None:
    service = start_temporal(free_port(), free_port(), tmp_path / "temporal.db")
    try:
        listed = subprocess.run(
            [tool("temporal"), "operator", "search-attribute", "list",
             "--address", service.url, "--output", "json"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
    finally:
        service.stop()
    custom = json.loads(listed)["customAttributes"]
    assert custom == {
        key.name: f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}"
        for key in CHECKOUT_SEARCH_ATTRIBUTES
    }
