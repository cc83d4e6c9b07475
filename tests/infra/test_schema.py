"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Numeric, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import infra.tables  # noqa: F401
from tests.support.databases import empty_database


@pytest_asyncio.fixture
async def fresh_database(database_url: str) -> AsyncIterator[tuple[str, AsyncEngine]]:
    async with empty_database(database_url) as database:
        yield database


def alembic_config(url: str) -> Config:
    config = Config("alembic.ini")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser escaping
    config.attributes["configure_logger"] = False
    return config


def differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_and_models_agree(fresh_database: tuple[str, AsyncEngine]) -> None:
    url, engine = fresh_database
    await _run_alembic(url, "upgrade", "head")
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"users", "artworks", "bids", "payments"} <= tables


# What PostgreSQL itself enforces, as it reports it: the parts Alembic's comparison skips
# (check constraints, partial indexes' conditions) included.
CATALOG_QUERIES = {
    "constraint": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    """,
    "index": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "column": """
        SELECT table_name, column_name,
               concat_ws(' ', data_type, character_maximum_length, numeric_precision,
                         numeric_scale, is_nullable, column_default)
        FROM information_schema.columns WHERE table_schema = 'public'
    """,
}


async def catalog(engine: AsyncEngine) -> set[tuple[str, str, str, str]]:
    found: set[tuple[str, str, str, str]] = set()
    async with engine.connect() as connection:
        for kind, query in CATALOG_QUERIES.items():
            for table, name, definition in (await connection.execute(text(query))).all():
                if table != "alembic_version":
                    found.add((kind, table, name, definition))
    return found


async def test_migrations_build_every_constraint_and_index_of_the_models(
    database_url: str, fresh_database: tuple[str, AsyncEngine]
) -> None:
    url, migrated = fresh_database
    await _run_alembic(url, "upgrade", "head")
    async with empty_database(database_url) as (_, modelled):
        async with modelled.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all)
        from_models = await catalog(modelled)
    from_migrations = await catalog(migrated)
    assert sorted(from_migrations - from_models) == []
    assert sorted(from_models - from_migrations) == []
    kinds = {kind for kind, *_ in from_models}
    assert kinds == set(CATALOG_QUERIES)


async def test_money_is_numeric_10_2_and_never_rounded(
    fresh_database: tuple[str, AsyncEngine],
) -> None:
    url, engine = fresh_database
    await _run_alembic(url, "upgrade", "head")
    async with engine.connect() as connection:
        column = await connection.run_sync(
            lambda c: {col["name"]: col for col in inspect(c).get_columns("payments")}["amount"]
        )
        numeric = column["type"]
        assert isinstance(numeric, Numeric)
        assert (numeric.precision, numeric.scale) == (10, 2)
        value = (
            await connection.execute(text("SELECT CAST('99999999.99' AS NUMERIC(10,2))"))
        ).scalar()
        assert value == Decimal("99999999.99")


async def test_downgrade_then_upgrade_round_trips(fresh_database: tuple[str, AsyncEngine]) -> None:
    url, engine = fresh_database
    await _run_alembic(url, "upgrade", "head")
    await _run_alembic(url, "downgrade", "base")
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert tables <= {"alembic_version"}
    await _run_alembic(url, "upgrade", "head")


async def _run_alembic(url: str, verb: str, target: str) -> None:
    import asyncio

    config = alembic_config(url)
    runner = command.upgrade if verb == "upgrade" else command.downgrade
    # env.py runs its own event loop, so Alembic runs in a thread of its own.
    await asyncio.to_thread(runner, config, target)


@pytest.mark.parametrize("status", ["refunded", "PAID", ""])
async def test_the_database_refuses_unknown_statuses(
    fresh_database: tuple[str, AsyncEngine], status: str
) -> None:
    from sqlalchemy.exc import IntegrityError

    url, engine = fresh_database
    await _run_alembic(url, "upgrade", "head")
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO users (subject, email) VALUES ('s', 's@x.io')"))
        with pytest.raises(IntegrityError):
            await connection.execute(
                text(
                    "INSERT INTO artworks (seller_id, title, starting_price, status) "
                    "SELECT id, 't', 1, :status FROM users"
                ),
                {"status": status},
            )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("stripe_payment_intent_id", None),  # a payment row exists only with its intent
        ("fee_amount", "103.30"),  # the fee is never the whole amount
        ("currency", "u$d"),
        ("currency", "USD"),  # Stripe's lower-case codes
    ],
)
async def test_the_database_refuses_an_impossible_payment(
    fresh_database: tuple[str, AsyncEngine], column: str, value: str | None
) -> None:
    from sqlalchemy.exc import IntegrityError

    url, engine = fresh_database
    await _run_alembic(url, "upgrade", "head")
    payment = {
        "stripe_payment_intent_id": "pi_1",
        "amount": "103.30",
        "fee_amount": "3.30",
        "currency": "usd",
        column: value,
    }
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO users (subject, email) VALUES ('s', 's@x.io')"))
        await connection.execute(
            text(
                "INSERT INTO artworks (seller_id, title, starting_price) "
                "SELECT id, 't', 1 FROM users"
            )
        )
        await connection.execute(
            text("INSERT INTO bids (artwork_id, bidder_id, amount) SELECT id, 1, 100 FROM artworks")
        )
        with pytest.raises(IntegrityError):
            await connection.execute(
                text(
                    "INSERT INTO payments (bid_id, stripe_payment_intent_id, amount, fee_amount, "
                    "currency, workflow_id, expires_at) SELECT id, :stripe_payment_intent_id, "
                    ":amount, :fee_amount, :currency, 'payment-bid-1', now() FROM bids"
                ),
                payment,
            )
