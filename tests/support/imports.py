"""What a package's modules import, read from their source (nothing is executed)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


def imports_of(package: Path) -> Iterator[tuple[Path, str]]:
    """(module, imported name) for every import in the package's modules, subpackages too."""
    for module in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield module, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                yield module, node.module
