"""domain/ is pure: it never imports I/O or framework packages."""

from pathlib import Path

import domain
from tests.support.imports import imports_of

FORBIDDEN = {
    "temporalio", "stripe", "sqlmodel", "sqlalchemy", "asyncpg", "fastapi", "httpx",
    "aiohttp", "requests", "socket", "asyncio", "infra", "api", "activities", "workflows",
}  # fmt: skip


def test_domain_imports_nothing_that_does_io() -> None:
    package = Path(domain.__file__).parent
    offenders = [
        f"{module.name}: {name}"
        for module, name in imports_of(package)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []
    assert len(list(package.glob("*.py"))) >= 3
