"""`make dev`: the whole service on this machine, from PyPI alone, until Ctrl-C.

PostgreSQL (pgserver, or DATABASE_URL), the migrations, Temporal's dev server with its Web UI,
localstripe with our webhook registered, an SMTP sink, then the worker and the API. State lives
under `.data/` (PostgreSQL and Temporal keep theirs across restarts; localstripe does not),
each server logs to `.data/logs/<name>.log`.

Ports come from DEV_API_PORT, DEV_TEMPORAL_PORT, DEV_TEMPORAL_UI_PORT, DEV_LOCALSTRIPE_PORT,
DEV_SMTP_PORT and DEV_WORKER_METRICS_PORT. The API's other settings (PAYMENT_TIMEOUT_SECONDS,
...) pass through from the environment.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from sqlalchemy.engine import make_url

from devstack.processes import (
    Service,
    StartupError,
    register_stripe_webhook,
    run_migrations,
    start_api,
    start_localstripe,
    start_postgres,
    start_smtp_sink,
    start_temporal,
    start_worker,
    tool,
)
from devstack.token import dev_jwt_secret, dev_token
from infra.payload_keys import DEVELOPMENT_KEY_FILE, load_payload_keys
from infra.settings import Environment, Settings

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / ".data"
LOGS = DATA / "logs"

# (env var, default) per port; the defaults are each tool's usual port.
PORTS = {
    "api": ("DEV_API_PORT", 8000),
    "temporal": ("DEV_TEMPORAL_PORT", 7233),
    "temporal_ui": ("DEV_TEMPORAL_UI_PORT", 8233),
    "localstripe": ("DEV_LOCALSTRIPE_PORT", 8420),
    "smtp": ("DEV_SMTP_PORT", 1025),
    "worker_metrics": ("DEV_WORKER_METRICS_PORT", 9464),
}


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: a BaseException, so no `except Exception` on the way swallows it."""


class ChildDied(Exception):
    def __init__(self, part: Part) -> None:
        super().__init__(f"{part.name} exited")
        self.part = part


@dataclass
class Part:
    """One running piece of the stack, as the supervisor sees it."""

    name: str
    stop: Callable[[], None]
    alive: Callable[[], bool]
    log: Path | None


@dataclass
class Stack:
    parts: list[Part] = field(default_factory=list)
    starting: str = ""  # the part being started, named when its start fails
    starting_log: Path | None = None
    stopping: bool = False

    def begin(self, label: str, log: Path | None) -> float:
        self.starting, self.starting_log = label, log
        print(f"  {label:<12} ", end="", flush=True)
        return time.monotonic()

    def add_service(self, label: str, service: Service) -> Service:
        self.parts.append(
            Part(label, service.stop, lambda: service.process.poll() is None, service.log_path)
        )
        return service

    def on_signal(self, signum: int, _: FrameType | None) -> None:
        if self.stopping:
            return  # already stopping in order; a second Ctrl-C must not cut that short
        self.stopping = True
        raise Interrupted(signal.Signals(signum).name)

    def watch(self) -> None:
        while True:
            for part in self.parts:
                if not part.alive():
                    raise ChildDied(part)
            time.sleep(0.5)

    def stop(self) -> None:
        self.stopping = True
        for part in reversed(self.parts):
            print(f"  stopping {part.name}", flush=True)
            try:
                part.stop()
            except Exception as failed:  # one stuck server must not keep the others running
                print(f"  could not stop {part.name} cleanly: {failed}", file=sys.stderr)
        self.parts.clear()


def read_ports() -> dict[str, int]:
    ports = {}
    for name, (variable, default) in PORTS.items():
        raw = os.environ.get(variable) or str(default)
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise StartupError(f"{variable}={raw!r} is not a TCP port number")
        ports[name] = int(raw)
    if len(set(ports.values())) < len(ports):
        raise StartupError(f"two servers cannot share a port: {ports}")
    return ports


def check_ports_free(ports: dict[str, int]) -> None:
    taken = []
    for name, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # SO_REUSEADDR: a port still in TIME_WAIT from the last run is free for a server.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                taken.append(f"  {port} ({name}): set {PORTS[name][0]} to use another port")
    if taken:
        raise StartupError(
            "these ports are already in use (by another `make dev`?):\n" + "\n".join(taken)
        )


def done(detail: str, started: float) -> None:
    print(f"{detail}  ({time.monotonic() - started:.1f} s)", flush=True)


def start(stack: Stack, ports: dict[str, int]) -> dict[str, str]:
    """Starts every part in order; returns what to print about the running stack."""
    LOGS.mkdir(parents=True, exist_ok=True)
    for name in ("temporal", "localstripe", "smtp", "worker", "api"):
        # Logs grow across runs; a header tells where this run begins.
        with (LOGS / f"{name}.log").open("a") as log:
            log.write(f"\n==== make dev, {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
    info: dict[str, str] = {}

    database_url = os.environ.get("DATABASE_URL")
    started = stack.begin("PostgreSQL", DATA / "postgres" / "log")
    if database_url:
        done("DATABASE_URL from the environment", started)
    else:
        postgres = start_postgres(DATA / "postgres")
        stack.parts.append(Part("PostgreSQL", postgres.stop, postgres.running, postgres.log_path))
        database_url = postgres.url
        info["postgres_log"] = str(postgres.log_path)
        done(database_url, started)
    info["database_url"] = database_url
    if make_url(database_url).password:  # a URL from the environment is shown without it
        info["database_url"] = make_url(database_url).render_as_string(hide_password=True)

    started = stack.begin("migrations", None)
    run_migrations(database_url)
    done("alembic upgrade head", started)

    started = stack.begin("payload key", None)
    # Made (or read) once here, so the worker and the API find the same key in .data/.
    keys = load_payload_keys(Settings(environment=Environment.DEVELOPMENT))
    from_environment = bool(os.environ.get("TEMPORAL_PAYLOAD_KEYS", "").strip())
    info["payload_keys"] = (
        "TEMPORAL_PAYLOAD_KEYS" if from_environment else os.path.relpath(DEVELOPMENT_KEY_FILE)
    )
    done(f"key {keys.primary.key_id} from {info['payload_keys']}", started)

    api_url = f"http://127.0.0.1:{ports['api']}"
    info["codec"] = f"{api_url}/codec"
    started = stack.begin("Temporal", LOGS / "temporal.log")
    temporal_db = DATA / "temporal" / "temporal.db"
    temporal = start_temporal(
        ports["temporal"], ports["temporal_ui"], temporal_db, LOGS, codec_endpoint=info["codec"]
    )
    stack.add_service("Temporal", temporal)
    info["temporal"] = temporal.url
    info["temporal_ui"] = f"http://127.0.0.1:{ports['temporal_ui']}"
    done(f"{temporal.url}, Web UI {info['temporal_ui']}, state in {temporal_db}", started)

    started = stack.begin("localstripe", LOGS / "localstripe.log")
    localstripe = stack.add_service("localstripe", start_localstripe(ports["localstripe"], LOGS))
    webhook_url = f"{api_url}/api/payments/webhook"
    # A fresh secret per run: localstripe forgets its webhooks on restart anyway.
    webhook_secret = f"whsec_dev_{secrets.token_hex(16)}"
    register_stripe_webhook(localstripe.url, webhook_url, webhook_secret)
    info["localstripe"] = localstripe.url
    done(f"{localstripe.url}, events signed and sent to {webhook_url}", started)

    started = stack.begin("SMTP sink", LOGS / "smtp.log")
    smtp = stack.add_service("SMTP sink", start_smtp_sink(ports["smtp"], LOGS))
    info["smtp"] = smtp.url
    done(smtp.url, started)

    env = {
        "ENVIRONMENT": "development",
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": temporal.url,
        "STRIPE_API_BASE": localstripe.url,
        # The emulator's key, never one that may sit in the developer's environment.
        "STRIPE_SECRET_KEY": str(Settings.model_fields["stripe_secret_key"].default),
        "STRIPE_WEBHOOK_SECRET": webhook_secret,
        "JWT_SECRET": dev_jwt_secret(),
        # The worker's mail dispatcher sends to the sink; links in mails lead to this API.
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(ports["smtp"]),
        "SMTP_STARTTLS": "false",
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or api_url,
        # The checkout page loads localstripe's stand-in for Stripe.js.
        "STRIPE_JS_URL": f"{localstripe.url}/js.stripe.com/v3/",
        # The Web UI as the banner prints it, and by name: it calls the codec from the browser.
        "TEMPORAL_UI_ORIGIN": (
            f"http://127.0.0.1:{ports['temporal_ui']},http://localhost:{ports['temporal_ui']}"
        ),
        # Prometheus's endpoint of the worker, on this machine only.
        "WORKER_METRICS_HOST": "127.0.0.1",
        "WORKER_METRICS_PORT": str(ports["worker_metrics"]),
    }
    started = stack.begin("worker", LOGS / "worker.log")
    stack.add_service("worker", start_worker(REPO, env, LOGS))
    info["worker_metrics"] = f"http://127.0.0.1:{ports['worker_metrics']}/metrics"
    done(f"polling task queue {Settings().temporal_task_queue}", started)

    started = stack.begin("API", LOGS / "api.log")
    api = stack.add_service("API", start_api(REPO, ports["api"], env, LOGS))
    done(f"{api.url} (GET /healthz answers 200)", started)
    stack.starting = ""
    info["api"] = api.url
    return info


def banner(info: dict[str, str], ports: dict[str, int]) -> str:
    seller = dev_token("seller-1", "seller@example.com", name="Sam Seller")
    buyer = dev_token("buyer-1", "buyer@example.com", name="Bea Buyer")
    operator = dev_token("operator-1", "ops@example.com", roles=["operator"])
    pay_env = ""
    if ports["localstripe"] != PORTS["localstripe"][1]:
        pay_env = f"DEV_LOCALSTRIPE_PORT={ports['localstripe']} "
    api, codec = info["api"], info["codec"]
    temporal_cli = os.path.relpath(tool("temporal"), REPO)
    logs = "\n".join(f"  {path}" for path in sorted(LOGS.glob("*.log")))
    if "postgres_log" in info:
        logs += f"\n  {info['postgres_log']}  (PostgreSQL's own)"
    return f"""
The stack is up. Ctrl-C stops it.

  API                {api}   (docs: {api}/docs)
  Temporal Web UI    {info["temporal_ui"]}
  Temporal gRPC      {info["temporal"]}   ({temporal_cli} workflow list --address ...)
  Payload codec      {codec}   (operators only)
  localstripe        {info["localstripe"]}
  SMTP sink          {info["smtp"]}   (the emails sent are printed to its log)
  Metrics            {info["worker_metrics"]}   (the worker's), {api}/metrics (the API's)
  PostgreSQL         {info["database_url"]}

Logs:
{logs}

Tokens (valid 24 h; `make token SUB=.. EMAIL=.. [ROLES=operator]` makes more):
  export API={api}
  export SELLER={seller}
  export BUYER={buyer}
  export OPERATOR={operator}

The whole flow, ready to paste (after the exports above):
  field() {{ python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }}
  JSON='Content-Type: application/json'
  ARTWORK=$(curl -sf -X POST $API/api/artworks -H "Authorization: Bearer $SELLER" -H "$JSON" \\
      -d '{{"title": "Blue Horse", "starting_price": "100.00"}}' | field id)
  BID=$(curl -sf -X POST $API/api/artworks/$ARTWORK/bids -H "Authorization: Bearer $BUYER" \\
      -H "$JSON" -d '{{"amount": "150.00"}}' | field id)
  curl -sf -X POST $API/api/artworks/$ARTWORK/close -H "Authorization: Bearer $SELLER"; echo
  PI=$(curl -sf -X POST $API/api/payments/create-intent -H "Authorization: Bearer $BUYER" \\
      -H "$JSON" -d "{{\\"bid_id\\": $BID}}" | field payment_intent_id)
  make watch ARTWORK=$ARTWORK TOKEN=$BUYER &   # its live events, one line each (kill %1 stops)
  # Pay in a browser, as the buyer: open the address this prints (it signs the page in) and
  # pay with 4242 4242 4242 4242, expiry 12 / 34, any CVC (4000 0000 0000 0341 is declined,
  # then another card may pay); the page follows the checkout live:
  echo "$API/checkout/$BID#token=$BUYER"
  # or from the shell instead:
  {pay_env}make pay PI=$PI     # CARD=pm_card_chargeCustomerFail declines instead
  sleep 2; curl -sf $API/api/artworks/$ARTWORK -H "Authorization: Bearer $BUYER"; echo
  curl -sf $API/api/payments/my-payments -H "Authorization: Bearer $BUYER"; echo
  {temporal_cli} workflow describe --address {info["temporal"]} -w payment-bid-$BID
  curl -sf "$API/api/operator/notifications?bid_id=$BID" -H "Authorization: Bearer $OPERATOR"
  # the emails themselves: {LOGS / "smtp.log"}

Temporal holds the payloads encrypted (key from {info["payload_keys"]}). To read them:
  {temporal_cli} workflow show --address {info["temporal"]} -w payment-bid-$BID \\
      --codec-endpoint {codec} --codec-auth "Bearer $OPERATOR"
  Web UI: sign this browser in at {codec}/login with $OPERATOR; then in the UI's codec
  settings (the data encoder icon) use the browser's setting with endpoint {codec}
  and tick "Include cross-origin credentials".
"""


def tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(f"    | {line}" for line in text)


def main() -> int:
    os.chdir(REPO)  # alembic.ini, worker.py and the `api` package are found from here
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset, which changes nothing here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    stack = Stack()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stack.on_signal)
    code = 0
    try:
        ports = read_ports()
        check_ports_free(ports)
        print(f"Starting the auction payments stack in {REPO} (logs in {LOGS})", flush=True)
        info = start(stack, ports)
        print(banner(info, ports), flush=True)
        stack.watch()
    except Interrupted as signalled:
        print(f"\n{signalled}: stopping", flush=True)
    except ChildDied as died:
        part = died.part
        print(
            f"\n{part.name} exited unexpectedly; its log: {part.log}\n{tail(part.log)}",
            file=sys.stderr,
        )
        code = 1
    except Exception as failed:  # a start that failed, whichever tool raised it
        log = stack.starting_log
        where = f" ({stack.starting} failed; its log: {log})" if log else ""
        print(f"\nCould not start the stack{where}:\n  {failed}\n{tail(log)}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
    print("Stopped." if code == 0 else "Stopped after a failure.", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
