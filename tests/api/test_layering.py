"""The API reaches the saga only through Temporal: it imports nothing from `activities`."""

import ast
from pathlib import Path

import api


def test_the_api_imports_nothing_from_the_activities() -> None:
    package = Path(api.__file__).parent
    offenders = []
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{module.relative_to(package)}: {name}"
                for name in names
                if name.split(".")[0] in ("activities", "worker")
            ]
    assert offenders == []
    assert (package / "realtime" / "server.py").is_file()  # the walk sees subpackages
