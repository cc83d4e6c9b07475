"""The statements an engine sends PostgreSQL, as SQLAlchemy hands them to the driver."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class Statements:
    """Each statement's first word (SELECT, INSERT...), from now on. A transaction's BEGIN and
    COMMIT are not statements here: asyncpg sends them itself."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sent: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(statement.split(None, 1)[0].upper())

    def since(self, mark: int) -> list[str]:
        return self.sent[mark:]
