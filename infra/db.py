"""The async engine and session factory, built once per process."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
    )


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def asyncpg_dsn(database_url: str) -> str:
    """DATABASE_URL as asyncpg itself reads it, for a connection of its own outside the pool
    (a LISTEN): SQLAlchemy's `+asyncpg` dialect removed."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)
