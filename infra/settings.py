"""One settings object, read once from the environment (see the README's table)."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.announcements import mail_domain
from domain.money import FeeSchedule
from infra.db import DEFAULT_POOL_SIZE, DEFAULT_POOL_TIMEOUT_SECONDS

# A browser's Origin header: what CORS compares, exactly.
ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")

DEVELOPMENT_MAIL_FROM = "Auction payments <payments@auction.localhost>"
DEVELOPMENT_BASE_URL = "http://localhost:8000"

# Secrets that only make sense on a laptop; refused when ENVIRONMENT=production.
DEVELOPMENT_SECRETS = frozenset(
    {
        "dev-only-jwt-secret-not-for-production",
        "sk_test_dev_localstripe",
        "whsec_dev_localstripe",
    }
)

# The API's /metrics sits on its public port: in production only a scraper holding a token of
# this length may read it, and without one it is not served at all.
MIN_METRICS_TOKEN = 32


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class JwtAlgorithm(StrEnum):
    """The HMAC algorithms a bearer token may be signed with; `none` and the rest never are."""

    HS256 = "HS256"
    HS384 = "HS384"
    HS512 = "HS512"

    @property
    def minimum_key_length(self) -> int:
        """RFC 7518: a key at least as long as the hash (256, 384, 512 bits)."""
        return int(self.value.removeprefix("HS")) // 8


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default="",
        description="PostgreSQL URL; postgresql:// is driven through asyncpg.",
    )
    database_pool_size: int = Field(
        default=DEFAULT_POOL_SIZE,
        gt=0,
        description="Connections each process (the API, the worker) keeps to PostgreSQL; "
        "never more: a burst waits for a free one.",
    )
    database_pool_timeout_seconds: float = Field(
        default=DEFAULT_POOL_TIMEOUT_SECONDS,
        gt=0,
        description="How long a request waits for a free connection before it is answered "
        "503 (an activity fails and is retried).",
    )
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "auction-payments"
    temporal_payload_keys: SecretStr | None = Field(
        default=None,
        description="key_id:base64-of-32-bytes[,...]: the first encrypts Temporal payloads, "
        "all decrypt. Unset outside production: a key generated under .data/.",
    )
    temporal_ui_origin: str = Field(
        default="http://localhost:8233",
        description="The Temporal Web UI's origin(s), comma-separated: the browsers that may "
        "call the codec endpoint.",
    )
    stripe_secret_key: str = "sk_test_dev_localstripe"
    stripe_webhook_secret: str = "whsec_dev_localstripe"
    stripe_api_base: str | None = Field(
        default=None, description="Unset talks to real Stripe; set it to localstripe's URL."
    )
    stripe_publishable_key: str = Field(
        default="pk_test_dev_localstripe",
        description="The publishable key the checkout page hands to Stripe.js.",
    )
    stripe_js_url: str = Field(
        default="https://js.stripe.com/v3/",
        description="Where the checkout page loads Stripe.js from; `make dev` points it at "
        "localstripe's.",
    )
    stripe_api_version: str = Field(
        default="2026-07-29.dahlia",
        description="Pinned: later versions drop `payment_method_types`, which localstripe needs.",
    )
    stripe_timeout_seconds: float = Field(default=20.0, gt=0)
    webhook_tolerance_seconds: int = Field(default=300, gt=0)
    payment_timeout_seconds: int = Field(default=600, gt=0)
    payment_processing_alert_seconds: int = Field(
        default=3600,
        gt=0,
        description="After this long in `processing` past its window, a checkout asks for an "
        "operator's attention.",
    )
    max_payment_extension_minutes: int = Field(
        default=1440,
        ge=0,
        description="How far past its original deadline operators may extend a checkout's.",
    )
    reconcile_interval_minutes: int = Field(
        default=5,
        gt=0,
        description="How often the schedule `reconcile-checkouts` compares the database, "
        "Stripe and Temporal and repairs what is safe.",
    )
    idempotency_prefix: str = Field(
        default="",
        max_length=100,
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prefixes Stripe idempotency keys; unique per deployment sharing an account.",
    )
    jwt_secret: str = "dev-only-jwt-secret-not-for-production"
    jwt_algorithm: JwtAlgorithm = Field(
        default=JwtAlgorithm.HS256, description="The one algorithm bearer tokens are signed with."
    )
    jwt_audience: str | None = Field(
        default=None, description="When set, a token's `aud` must name it."
    )
    jwt_issuer: str | None = Field(
        default=None, description="When set, a token's `iss` must be it."
    )
    live_events_allowed_origins: str = Field(
        default="",
        description="Comma-separated browser origins that may open live-event sockets; "
        "empty is the API's own origin only, `*` is any.",
    )
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=1025, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection to TLS.")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    mail_from: str = Field(
        default=DEVELOPMENT_MAIL_FROM,
        description="The From header; its domain also names our Message-IDs.",
    )
    mail_retry_hours: float = Field(
        default=24, gt=0, description="How long an email is retried before it is marked failed."
    )
    mail_retry_initial_seconds: float = Field(
        default=30, gt=0, description="The first wait before retrying an email; it doubles."
    )
    mail_dispatcher: bool = Field(
        default=True, description="Run the mail dispatcher beside the Temporal worker."
    )
    public_base_url: str = Field(
        default=DEVELOPMENT_BASE_URL, description="Where buyers reach the service: mail links."
    )
    worker_max_cached_workflows: int = Field(
        default=12_000,
        gt=0,
        description="Workflow runs the worker keeps in memory (about 90 KiB each); keep it "
        "above the checkouts waiting at once, or evicted ones replay their history.",
    )
    worker_max_concurrent_workflow_tasks: int = Field(
        default=100,
        ge=2,
        description="Workflow tasks the worker runs at once (the SDK's default).",
    )
    worker_max_concurrent_activities: int = Field(
        default=100,
        gt=0,
        description="Activities the worker runs at once (the SDK's default); they share its "
        "DATABASE_POOL_SIZE connections and Stripe's rate limit.",
    )
    worker_metrics_port: int = Field(
        default=9464,
        ge=0,
        lt=65536,
        description="The worker serves Prometheus metrics on this port; 0 serves none.",
    )
    worker_metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 (scraped from another host; the port stays internal)
        description="The address the worker's metrics endpoint binds to.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="When set, the API's /metrics wants `Authorization: Bearer <it>`; "
        "unset, /metrics is open, except in production, where it is not served.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector base URL; traces are exported only when it is set.",
    )
    otel_service_name: str | None = Field(
        default=None,
        description="The service name on this process's spans; auction-api or auction-worker "
        "when unset.",
    )
    stripe_fee_percent: Decimal = Field(default=Decimal("2.9"), ge=0, lt=100)
    stripe_fee_fixed: Decimal = Field(default=Decimal("0.30"), ge=0)

    @field_validator("database_url")
    @classmethod
    def _use_asyncpg(cls, url: str) -> str:
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url.removeprefix(prefix)
        return url

    @field_validator("mail_from")
    @classmethod
    def _names_a_sender(cls, mail_from: str) -> str:
        mail_domain(mail_from)
        return mail_from

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/")

    @field_validator(
        "jwt_audience",
        "jwt_issuer",
        "smtp_username",
        "smtp_password",
        "metrics_token",
        "otel_exporter_otlp_endpoint",
        "otel_service_name",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("temporal_payload_keys")
    @classmethod
    def _blank_keys_are_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # The format is checked where the keys are loaded: a validation error here would
        # print the value, secrets and all.
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("temporal_ui_origin")
    @classmethod
    def _origins(cls, value: str) -> str:
        origins = [origin.strip() for origin in value.split(",") if origin.strip()]
        for origin in origins:
            if not ORIGIN.fullmatch(origin):
                raise ValueError("each origin is scheme://host[:port], without a path")
        return ",".join(origins)

    @property
    def temporal_ui_origins(self) -> list[str]:
        return [origin for origin in self.temporal_ui_origin.split(",") if origin]

    def refuse_development_secrets(self, *names: str) -> None:
        """In production, stops a process whose secrets are still the laptop defaults.

        Each process names the secrets it uses: the worker never needs JWT_SECRET.
        """
        if self.environment is not Environment.PRODUCTION:
            return
        for name in names:
            if getattr(self, name) in DEVELOPMENT_SECRETS:
                raise ValueError(f"{name.upper()} must be set to a real secret in production")
        shortest_key = self.jwt_algorithm.minimum_key_length
        if "jwt_secret" in names and len(self.jwt_secret) < shortest_key:
            raise ValueError(
                f"JWT_SECRET must be at least {shortest_key} characters in production"
                f" with {self.jwt_algorithm}"
            )
        if "metrics_token" in names and 0 < len(self.metrics_token or "") < MIN_METRICS_TOKEN:
            raise ValueError(
                f"METRICS_TOKEN must be {MIN_METRICS_TOKEN} characters or more in production: "
                "it is all that guards /metrics"
            )
        if "stripe_secret_key" in names and not self.idempotency_prefix:
            raise ValueError(
                "IDEMPOTENCY_PREFIX must be set in production, unique among the deployments "
                "that share this Stripe account"
            )

    def refuse_development_mail(self) -> None:
        """In production, stops the mail sender while its sender and links are the laptop's."""
        if self.environment is not Environment.PRODUCTION:
            return
        if self.mail_from == DEVELOPMENT_MAIL_FROM:
            raise ValueError("MAIL_FROM must be set in production: the sender of every email")
        if self.public_base_url == DEVELOPMENT_BASE_URL:
            raise ValueError("PUBLIC_BASE_URL must be set in production: the links in emails")

    @property
    def fee_schedule(self) -> FeeSchedule:
        return FeeSchedule(percent=self.stripe_fee_percent, fixed=self.stripe_fee_fixed)

    def require_database_url(self) -> str:
        if not self.database_url:
            raise RuntimeError(
                "DATABASE_URL is not set: `make dev` sets it for the embedded PostgreSQL"
            )
        return self.database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
