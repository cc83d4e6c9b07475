"""TEMPORAL_PAYLOAD_KEYS: its format, the development key under .data/, and the refusal to run
production without keys. No message ever repeats a secret."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.main import create_app
from infra.payload_keys import PayloadKeyError, PayloadKeys, development_keys, load_payload_keys
from infra.settings import Environment, Settings

REPO = Path(__file__).resolve().parents[2]
SECRET = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(32, 64))).decode()


def settings(environment: Environment, keys: str | None = None) -> Settings:
    return Settings.model_validate({"environment": environment, "temporal_payload_keys": keys})


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    ring = PayloadKeys.parse(f" k2:{OTHER} , k1:{SECRET}\n")
    assert ring.key_ids == ("k2", "k1")
    assert ring.primary.secret == bytes(range(32, 64))
    assert PayloadKeys.parse(ring.render()) == ring


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (SECRET, "entry 1 of TEMPORAL_PAYLOAD_KEYS is not key_id:base64-of-32-bytes"),
        (f"k1:{SECRET},{OTHER}", "entry 2 of TEMPORAL_PAYLOAD_KEYS is not key_id"),
        (f"bad id:{SECRET}", "entry 1 of TEMPORAL_PAYLOAD_KEYS: a key id is 1 to 64"),
        (f":{SECRET}", "entry 1 of TEMPORAL_PAYLOAD_KEYS: a key id is 1 to 64"),
        (f"k1:{SECRET[:-4]}!!!!", "key k1 in TEMPORAL_PAYLOAD_KEYS is not valid base64"),
        (f"k1:{base64.b64encode(bytes(16)).decode()}", "is 16 bytes, not 32"),
        (f"k1:{SECRET},k1:{OTHER}", "names key id k1 twice"),
        (f"k1:{SECRET},", "entry 2 of TEMPORAL_PAYLOAD_KEYS is not key_id"),
    ],
)
def test_a_malformed_value_is_refused_without_repeating_it(text: str, says: str) -> None:
    with pytest.raises(PayloadKeyError, match=says) as refused:
        load_payload_keys(settings(Environment.PRODUCTION, text))
    for secret in (SECRET, OTHER, SECRET[:-4]):
        assert secret not in str(refused.value)


@given(st.text(alphabet="ABCDEFabcdef0123456789+/=:, -_.", max_size=120))
def test_whatever_the_value_a_refusal_never_quotes_its_secrets(text: str) -> None:
    message = ""
    try:
        PayloadKeys.parse(text)
    except PayloadKeyError as refused:
        message = str(refused)
    entries = [entry.partition(":") for entry in text.split(",")]
    key_ids = {key_id.strip() for key_id, _, _ in entries}
    for _, _, secret in entries:
        if len(secret.strip()) >= 12 and secret.strip() not in key_ids:
            assert secret.strip() not in message


def test_the_keys_are_a_secret_of_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_PAYLOAD_KEYS", f"k1:{SECRET}")
    read = Settings()
    assert read.temporal_payload_keys is not None
    assert read.temporal_payload_keys.get_secret_value() == f"k1:{SECRET}"
    assert SECRET not in repr(read) and SECRET not in str(read.model_dump())
    monkeypatch.setenv("TEMPORAL_PAYLOAD_KEYS", "  ")
    assert Settings().temporal_payload_keys is None


def test_production_refuses_to_run_without_keys() -> None:
    with pytest.raises(PayloadKeyError, match="TEMPORAL_PAYLOAD_KEYS must be set in production"):
        load_payload_keys(settings(Environment.PRODUCTION))


@pytest.mark.parametrize("environment", [Environment.DEVELOPMENT, Environment.TEST])
def test_elsewhere_a_key_is_made_once_in_the_data_folder_then_reused(
    tmp_path: Path, environment: Environment
) -> None:
    key_file = tmp_path / ".data" / "temporal-payload-key"
    made = load_payload_keys(settings(environment), development_file=key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert made.primary.key_id.startswith("dev-") and len(made.primary.secret) == 32
    assert load_payload_keys(settings(environment), development_file=key_file) == made
    assert PayloadKeys.parse(key_file.read_text()) == made
    assert list(key_file.parent.iterdir()) == [key_file]  # no draft left behind


def test_processes_starting_together_agree_on_one_development_key(tmp_path: Path) -> None:
    key_file = tmp_path / "temporal-payload-key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        rings = list(pool.map(lambda _: development_keys(key_file), range(16)))
    assert all(ring == rings[0] for ring in rings)


def test_a_development_key_others_may_read_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "temporal-payload-key"
    development_keys(key_file)
    key_file.chmod(0o644)
    with pytest.raises(PayloadKeyError, match="may be read by other users"):
        development_keys(key_file)


def test_configured_keys_win_over_the_development_file(tmp_path: Path) -> None:
    key_file = tmp_path / "temporal-payload-key"
    ring = load_payload_keys(settings(Environment.DEVELOPMENT, f"k1:{SECRET}"), key_file)
    assert ring.key_ids == ("k1",)
    assert not key_file.exists()


def test_the_worker_refuses_to_start_in_production_without_keys() -> None:
    environment = {
        **os.environ,
        "ENVIRONMENT": "production",
        "STRIPE_SECRET_KEY": "sk_live_not_a_real_key",
        "IDEMPOTENCY_PREFIX": "refusal-test",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "TEMPORAL_PAYLOAD_KEYS": "",
    }
    run = subprocess.run(
        [sys.executable, str(REPO / "worker.py")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert run.returncode != 0
    assert "TEMPORAL_PAYLOAD_KEYS must be set in production" in run.stderr


async def test_the_api_refuses_to_start_in_production_without_keys() -> None:
    production = Settings.model_validate(
        {
            "environment": Environment.PRODUCTION,
            "jwt_secret": "x" * 40,
            "stripe_webhook_secret": "whsec_refusal_test",
            "database_url": "postgresql://nobody@127.0.0.1:1/none",
        }
    )
    app = create_app(production).http
    with pytest.raises(PayloadKeyError, match="TEMPORAL_PAYLOAD_KEYS must be set in production"):
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0)
