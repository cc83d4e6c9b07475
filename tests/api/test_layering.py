"""The API reaches the saga only through Temporal: it imports nothing from `activities`."""

from pathlib import Path

import api
from tests.support.imports import imports_of


def test_the_api_imports_nothing_from_the_activities() -> None:
    package = Path(api.__file__).parent
    offenders = [
        f"{module.relative_to(package)}: {name}"
        for module, name in imports_of(package)
        if name.split(".")[0] in ("activities", "worker")
    ]
    assert offenders == []
    assert (package / "realtime" / "server.py").is_file()  # the walk sees subpackages
