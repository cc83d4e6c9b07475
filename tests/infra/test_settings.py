import pytest

from infra.settings import Environment, Settings


def test_postgres_urls_are_driven_through_asyncpg() -> None:
    settings = Settings(database_url="postgresql://u:p@db:5432/auction")
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/auction"


def test_production_refuses_the_laptop_secrets_a_process_uses() -> None:
    settings = Settings(
        environment=Environment.PRODUCTION, stripe_secret_key="sk_live_x", idempotency_prefix="eu"
    )
    with pytest.raises(ValueError, match="JWT_SECRET"):
        settings.refuse_development_secrets("jwt_secret", "stripe_webhook_secret")
    settings.refuse_development_secrets("stripe_secret_key")  # the worker's only secret


def test_production_wants_a_long_jwt_secret() -> None:
    settings = Settings(environment=Environment.PRODUCTION, jwt_secret="short")
    with pytest.raises(ValueError, match="32 characters"):
        settings.refuse_development_secrets("jwt_secret")


def test_development_runs_on_its_defaults() -> None:
    Settings().refuse_development_secrets(
        "jwt_secret", "stripe_secret_key", "stripe_webhook_secret"
    )


def test_payment_deadline_must_be_positive() -> None:
    with pytest.raises(ValueError, match="payment_timeout_seconds"):
        Settings(payment_timeout_seconds=0)


def test_production_wants_an_idempotency_prefix_of_its_own() -> None:
    """Two deployments sharing a Stripe account must never answer each other's creates."""
    settings = Settings(environment=Environment.PRODUCTION, stripe_secret_key="sk_live_x")
    with pytest.raises(ValueError, match="IDEMPOTENCY_PREFIX"):
        settings.refuse_development_secrets("stripe_secret_key")
    with pytest.raises(ValueError, match="idempotency_prefix"):
        Settings(idempotency_prefix="has spaces")
