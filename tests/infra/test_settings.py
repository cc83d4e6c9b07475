from pathlib import Path

import pytest

from infra.settings import Environment, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


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


def test_bearer_tokens_default_to_hs256_with_no_audience_or_issuer() -> None:
    settings = Settings()
    assert settings.jwt_algorithm == "HS256"
    assert settings.jwt_audience is None
    assert settings.jwt_issuer is None


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_the_hmac_algorithms_can_be_chosen(monkeypatch: pytest.MonkeyPatch, algorithm: str) -> None:
    monkeypatch.setenv("JWT_ALGORITHM", algorithm)
    assert Settings().jwt_algorithm == algorithm


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256", "hs256", ""])
def test_no_other_algorithm_can_be_configured(
    monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    monkeypatch.setenv("JWT_ALGORITHM", algorithm)
    with pytest.raises(ValueError, match="jwt_algorithm"):
        Settings()


def test_a_blank_audience_or_issuer_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_AUDIENCE", "")
    monkeypatch.setenv("JWT_ISSUER", " ")
    settings = Settings()
    assert settings.jwt_audience is None
    assert settings.jwt_issuer is None


def test_audience_and_issuer_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_AUDIENCE", "auction-api")
    monkeypatch.setenv("JWT_ISSUER", "https://id.example.test/")
    settings = Settings()
    assert settings.jwt_audience == "auction-api"
    assert settings.jwt_issuer == "https://id.example.test/"


def test_production_wants_a_key_as_long_as_the_algorithms_hash() -> None:
    settings = Settings(
        environment=Environment.PRODUCTION, jwt_algorithm="HS512", jwt_secret="k" * 40
    )
    with pytest.raises(ValueError, match="64 characters"):
        settings.refuse_development_secrets("jwt_secret")
    Settings(
        environment=Environment.PRODUCTION, jwt_algorithm="HS512", jwt_secret="k" * 64
    ).refuse_development_secrets("jwt_secret")


def test_the_sender_must_name_an_address_with_a_domain() -> None:
    assert Settings(mail_from="Auction <pay@auction.example>").mail_from
    for bad in ("nobody", "Auction <pay@>", "<@auction.example>", "pay@localhost"):
        with pytest.raises(ValueError, match="mail_from"):
            Settings(mail_from=bad)


def test_production_mails_from_its_own_sender_with_its_own_links() -> None:
    settings = Settings(environment=Environment.PRODUCTION)
    with pytest.raises(ValueError, match="MAIL_FROM"):
        settings.refuse_development_mail()
    settings = Settings(
        environment=Environment.PRODUCTION, mail_from="Auction <pay@auction.example>"
    )
    with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
        settings.refuse_development_mail()
    Settings(
        environment=Environment.PRODUCTION,
        mail_from="Auction <pay@auction.example>",
        public_base_url="https://auction.example/",
    ).refuse_development_mail()
    Settings().refuse_development_mail()  # a laptop mails to its sink from the defaults


def test_links_lead_somewhere_over_http() -> None:
    assert Settings(public_base_url="https://auction.example/").public_base_url == (
        "https://auction.example"
    )
    with pytest.raises(ValueError, match="public_base_url"):
        Settings(public_base_url="auction.example")


def test_production_wants_a_long_metrics_token_when_there_is_one() -> None:
    """/metrics is on the API's public port: its token is all that guards it. Without one,
    production does not serve it (see tests/telemetry)."""
    api = ("jwt_secret", "stripe_webhook_secret", "metrics_token")

    def production(token: str | None) -> Settings:
        return Settings(
            environment=Environment.PRODUCTION,
            jwt_secret="j" * 32,
            stripe_webhook_secret="whsec_live_x",
            metrics_token=token,
        )

    with pytest.raises(ValueError, match="METRICS_TOKEN"):
        production("short").refuse_development_secrets(*api)
    for token in (None, "", "m" * 32):
        production(token).refuse_development_secrets(*api)
    Settings().refuse_development_secrets(*api)


def test_worker_metrics_port_zero_is_off_and_ports_are_ports() -> None:
    assert Settings().worker_metrics_port == 9464
    assert Settings(worker_metrics_port=0).worker_metrics_port == 0
    with pytest.raises(ValueError, match="worker_metrics_port"):
        Settings(worker_metrics_port=65536)


def test_operators_may_extend_a_deadline_by_a_day_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().max_payment_extension_minutes == 1440
    monkeypatch.setenv("MAX_PAYMENT_EXTENSION_MINUTES", "90")
    assert Settings().max_payment_extension_minutes == 90
    with pytest.raises(ValueError, match="max_payment_extension_minutes"):
        Settings(max_payment_extension_minutes=-1)


def test_every_setting_is_in_the_readmes_configuration_table() -> None:
    table = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in table]
    assert not missing, f"README's Configuration does not name {missing}"
