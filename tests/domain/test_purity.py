"""domain/ is pure: it never imports I/O or framework packages."""

import ast
from pathlib import Path

import domain

FORBIDDEN = {
    "temporalio", "stripe", "sqlmodel", "sqlalchemy", "asyncpg", "fastapi", "httpx",
    "aiohttp", "requests", "socket", "asyncio", "infra", "api", "activities", "workflows",
}  # fmt: skip


def test_domain_imports_nothing_that_does_io() -> None:
    package = Path(domain.__file__).parent
    offenders = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{module.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []
    assert len(list(package.glob("*.py"))) >= 3
