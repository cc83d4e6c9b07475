"""The statements an engine sends PostgreSQL, as SQLAlchemy hands them to the driver."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class Statements:
    """Each statement's first word (SELECT, INSERT...), from now on, in `sent`. A
    transaction's BEGIN and COMMIT are not statements there: asyncpg sends them itself, and
    `transaction_control` has those (BEGIN, COMMIT, ROLLBACK), each one more round trip.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.sent: list[str] = []
        self.transaction_control: list[str] = []
        self._logged: set[int] = set()
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)
        event.listen(engine.sync_engine, "checkout", self._log_driver)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.sent.append(_first_word(statement))

    def _log_driver(self, dbapi_connection: Any, *_: Any) -> None:
        driver = dbapi_connection.driver_connection
        if id(driver) not in self._logged:
            self._logged.add(id(driver))
            driver.add_query_logger(self._record_driver)

    def _record_driver(self, record: Any) -> None:
        # asyncpg logs the queries it runs itself; our statements go as prepared ones.
        self.transaction_control.append(_first_word(record.query).rstrip(";"))

    def since(self, mark: int) -> list[str]:
        return self.sent[mark:]

    async def transaction_control_since(self, mark: int) -> list[str]:
        await asyncio.sleep(0)  # asyncpg hands its log records over with `call_soon`
        return self.transaction_control[mark:]


def _first_word(statement: str) -> str:
    return statement.split(None, 1)[0].upper()
