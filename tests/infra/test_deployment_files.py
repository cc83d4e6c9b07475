"""The deployment files, checked without a Docker engine: what compose and the image would run
must exist, be configured only through variables the code reads, and carry no secret."""

from __future__ import annotations

import configparser
import fnmatch
import importlib
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from api.main import AuctionApp
from infra.settings import DEVELOPMENT_SECRETS, Settings
from workflows.search_attributes import CHECKOUT_SEARCH_ATTRIBUTES, type_name

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

APP_SERVICES = ("migrate", "worker", "api")
REQUIRED_SECRETS = (
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "JWT_SECRET",
    "TEMPORAL_PAYLOAD_KEYS",
)
SETTINGS_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)

# What each third-party image documents as its configuration.
IMAGE_VARIABLES: dict[str, frozenset[str]] = {
    "postgres": frozenset({"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PGDATA"}),
    "temporalio/server": frozenset(
        {
            "DB",
            "DB_PORT",
            "DBNAME",
            "VISIBILITY_DBNAME",
            "POSTGRES_SEEDS",
            "POSTGRES_USER",
            "POSTGRES_PWD",
            "BIND_ON_IP",
            "TEMPORAL_BROADCAST_ADDRESS",
            "DYNAMIC_CONFIG_FILE_PATH",
            "LOG_LEVEL",
            "NUM_HISTORY_SHARDS",
        }
    ),
    "temporalio/admin-tools": frozenset(
        {
            "SQL_PLUGIN",
            "SQL_HOST",
            "SQL_PORT",
            "SQL_USER",
            "SQL_PASSWORD",
            "SQL_DATABASE",
            "TEMPORAL_ADDRESS",
            "TEMPORAL_NAMESPACE",
        }
    ),
    "temporalio/ui": frozenset(
        {
            "TEMPORAL_ADDRESS",
            "TEMPORAL_CORS_ORIGINS",
            "TEMPORAL_UI_PORT",
            "TEMPORAL_CODEC_ENDPOINT",
            "TEMPORAL_CODEC_PASS_ACCESS_TOKEN",
            "TEMPORAL_CODEC_INCLUDE_CREDENTIALS",
        }
    ),
}

# ${NAME}, ${NAME:-default}, ${NAME:?message}, as compose interpolates them.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|(^|_)KEYS?$")
SECRET_LITERALS = (
    re.compile(r"\b[sr]k_(live|test)_[A-Za-z0-9]{6,}"),
    re.compile(r"\bwhsec_[A-Za-z0-9]{6,}"),
    re.compile(r"\bpk_(live|test)_[A-Za-z0-9]{6,}"),
)


def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]


def environment(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def image_name(service: str) -> str:
    image = str(SERVICES[service]["image"])
    return image.split("@")[0].rsplit(":", 1)[0] if ":" in image else image


def built_here(service: str) -> bool:
    return "build" in SERVICES[service]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped.removesuffix("\\").strip() + " "
        if not stripped.endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list) and all(isinstance(part, str) for part in parsed)
    return parsed


def copied_into_image() -> set[str]:
    """Paths the final stage copies from the build context (not from another stage)."""
    copied: set[str] = set()
    for op, arguments in final_stage():
        if op == "COPY" and "--from=" not in arguments:
            copied.update(arguments.split()[:-1])
    return copied


def runtime_dependencies() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}


def commands() -> dict[str, list[str]]:
    """What each of our containers runs: its compose command, else the image's CMD."""
    image_cmd = next(exec_form(args) for op, args in reversed(final_stage()) if op == "CMD")
    found = {"Dockerfile CMD": image_cmd}
    for service in APP_SERVICES:
        command = SERVICES[service].get("command", image_cmd)
        found[service] = shlex.split(command) if isinstance(command, str) else list(command)
    return found


def test_compose_defines_the_whole_deployment() -> None:
    expected = {"postgres", "temporal", "temporal-ui", "migrate", "worker", "api"}
    assert expected <= set(SERVICES)
    assert all(built_here(service) for service in APP_SERVICES)
    assert not any(built_here(service) for service in set(SERVICES) - set(APP_SERVICES))


def test_our_services_are_configured_only_through_settings() -> None:
    for service in APP_SERVICES:
        unknown = set(environment(service)) - SETTINGS_VARIABLES
        assert not unknown, f"{service} sets {unknown}, which Settings does not read"


def test_other_services_use_only_their_images_variables() -> None:
    for service in set(SERVICES) - set(APP_SERVICES):
        known = IMAGE_VARIABLES.get(image_name(service))
        assert known is not None, f"{service}: no list of variables for {image_name(service)}"
        unknown = set(environment(service)) - known
        assert not unknown, f"{service} sets {unknown}, unknown to {image_name(service)}"


def test_our_services_refuse_to_start_without_their_secrets() -> None:
    for service in APP_SERVICES:
        env = environment(service)
        assert env["ENVIRONMENT"] == "production"
        for name in REQUIRED_SECRETS:
            match = INTERPOLATION.fullmatch(env[name])
            assert match, f"{service}: {name} must come from the environment"
            assert (match["name"], match["op"]) == (name, ":?"), f"{service}: {name} not required"
            assert match["arg"].strip(), f"{service}: {name} needs a message saying what to set"
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_no_literal_secrets() -> None:
    for service in SERVICES:
        for name, value in environment(service).items():
            if SECRET_NAME.search(name):
                match = INTERPOLATION.fullmatch(value)
                assert match and match["op"] == ":?", (
                    f"{service}: {name} is not a required variable"
                )
    for path in (COMPOSE_FILE, DOCKERFILE, DOCKERIGNORE):
        text = path.read_text()
        for pattern in SECRET_LITERALS:
            assert not pattern.search(text), f"{path.name} holds what looks like a Stripe key"
        for secret in DEVELOPMENT_SECRETS:
            assert secret not in text, f"{path.name} holds the development secret {secret}"
    for op, arguments in dockerfile_instructions():
        if op in ("ENV", "ARG"):
            assert not SECRET_NAME.search(arguments.split("=")[0]), f"{op} {arguments}"


def test_depends_on_waits_for_what_can_be_awaited() -> None:
    for service, definition in SERVICES.items():
        depends_on = definition.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{service}: depends_on needs conditions"
        for target, spec in depends_on.items():
            assert target in SERVICES, f"{service} depends on unknown {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                check = SERVICES[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{target}: no healthcheck"
            elif condition == "service_completed_successfully":
                assert SERVICES[target].get("restart", "no") == "no", f"{target} is not one-shot"
            else:
                pytest.fail(f"{service} starts before {target} is ready ({condition})")


def test_api_and_worker_start_after_the_migrations_and_the_namespace() -> None:
    for service in ("api", "worker"):
        depends_on = SERVICES[service]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["temporal-namespace"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_workers_metrics_are_reachable_inside_the_network_only() -> None:
    worker = SERVICES["worker"]
    port = environment("worker")["WORKER_METRICS_PORT"]
    # Every interface of the container, so that Prometheus reaches it across the network.
    assert int(port) > 0 and environment("worker")["WORKER_METRICS_HOST"] == "0.0.0.0"  # noqa: S104
    assert port in [str(exposed) for exposed in worker.get("expose", [])]
    assert not worker.get("ports"), "the worker's metrics have no authentication"
    token = INTERPOLATION.fullmatch(environment("api")["METRICS_TOKEN"])
    assert token and token["op"] == ":?", "the API's /metrics needs its token in production"


def test_postgres_keeps_its_data_in_a_volume_and_reports_readiness() -> None:
    postgres = SERVICES["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volumes = [str(volume).split(":") for volume in postgres["volumes"]]
    assert ["postgres-data", "/var/lib/postgresql/data"] in volumes
    assert "postgres-data" in COMPOSE["volumes"]


def test_temporal_schema_tools_match_the_server() -> None:
    versions = {
        str(definition["image"]).rsplit(":", 1)[1]
        for definition in SERVICES.values()
        if str(definition.get("image", "")).startswith(("temporalio/server", "temporalio/admin"))
    }
    assert len(versions) == 1, f"temporal server and admin-tools differ: {versions}"


def test_image_is_slim_python_without_root_or_dev_extras() -> None:
    instructions = dockerfile_instructions()
    bases = [args.split()[0] for op, args in instructions if op == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases)
    users = [args.strip() for op, args in final_stage() if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    installs = [args for op, args in instructions if op == "RUN" and "pip install" in args]
    assert installs and all("[dev]" not in args for args in installs)
    assert any(re.search(r"pip install \.(\s|$)", args) for args in installs)


@pytest.mark.parametrize("name", ["Dockerfile CMD", *APP_SERVICES])
def test_every_command_runs_code_that_exists(name: str) -> None:
    argv = commands()[name]
    program, args = argv[0], argv[1:]
    if program in ("uvicorn", "alembic"):
        assert program in runtime_dependencies(), f"{program} is not installed in the image"
    if program == "uvicorn":
        module, _, attribute = args[0].partition(":")
        app = getattr(importlib.import_module(module), attribute)
        assert isinstance(app, AuctionApp) and isinstance(app.http, FastAPI)
    elif program == "python":
        assert (REPO / args[0]).is_file() and args[0] in copied_into_image()
    elif program == "alembic":
        assert args == ["upgrade", "head"]
        config = configparser.ConfigParser(interpolation=None)
        config.read(REPO / "alembic.ini")
        scripts = config["alembic"]["script_location"].replace("%(here)s/", "")
        assert (REPO / scripts / "env.py").is_file()
        assert {"alembic.ini", scripts} <= copied_into_image()
    else:
        pytest.fail(f"{name} runs {program}, which this test does not know")


def test_api_healthcheck_probes_a_route_the_app_serves() -> None:
    probe = " ".join(SERVICES["api"]["healthcheck"]["test"])
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\S*?)'", probe)
    assert url, probe
    port, path = url.groups()
    api_command = commands()["api"]
    assert api_command[api_command.index("--port") + 1] == port
    module, _, attribute = api_command[1].partition(":")
    app = getattr(importlib.import_module(module), attribute)
    assert path in {getattr(route, "path", None) for route in app.http.routes}


def test_build_context_excludes_local_state_but_not_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for private in (".git", ".venv", ".data", ".env"):
        assert private in patterns, f".dockerignore lets {private} into the build context"
    sources = {
        source
        for op, arguments in dockerfile_instructions()
        if op == "COPY" and "--from=" not in arguments
        for source in arguments.split()[:-1]
    }
    for source in sources:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        ignored = [pattern for pattern in patterns if fnmatch.fnmatch(source, pattern)]
        assert not ignored, f"{source} is copied but excluded by {ignored}"


def test_the_image_installs_every_package_the_processes_import() -> None:
    """A package the worker or the API imports but the build stage does not copy would be
    missing from the installed image, and the process would die on its first import."""
    probe = (
        "import sys, worker, api.main; "
        "print('\\n'.join(sorted({n.partition('.')[0] for n in sys.modules})))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    packages = {name for name in imported if (REPO / name / "__init__.py").is_file()}
    build = [args.split()[:-1] for op, args in dockerfile_instructions() if op == "COPY"]
    copied = {source for sources in build for source in sources}
    assert {"notifications", "infra", "domain", "api"} <= packages
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


def test_the_namespace_job_registers_every_search_attribute_of_the_saga() -> None:
    """The CLI pairs each --name with the --type in the same position."""
    script = " ".join(SERVICES["temporal-namespace"]["command"]).replace("\\\n", " ")
    creates = [
        shlex.split(line.split("search-attribute create", 1)[1])
        for line in script.split("temporal operator")
        if line.strip().startswith("search-attribute create")
    ]
    registered: dict[str, str] = {}
    for arguments in creates:
        names = [arguments[i + 1] for i, flag in enumerate(arguments) if flag == "--name"]
        types = [arguments[i + 1] for i, flag in enumerate(arguments) if flag == "--type"]
        assert len(names) == len(types), arguments
        # $$: compose leaves the variable for the shell, which reads the job's own.
        assert arguments[arguments.index("--namespace") + 1] == "$$TEMPORAL_NAMESPACE"
        registered.update(zip(names, types, strict=True))
    assert registered == {key.name: type_name(key) for key in CHECKOUT_SEARCH_ATTRIBUTES}


def test_the_web_ui_decodes_through_the_apis_codec_with_the_operators_cookie() -> None:
    ui = environment("temporal-ui")
    endpoint = INTERPOLATION.fullmatch(ui["TEMPORAL_CODEC_ENDPOINT"])
    assert endpoint and endpoint["op"] == ":-", (
        "the codec endpoint is the operators' URL of the API"
    )
    path = re.sub(r"^https?://[^/]+", "", endpoint["arg"])
    served = importlib.import_module("api.main").app.http.openapi()["paths"]
    assert {f"{path}/decode", f"{path}/encode"} <= set(served)
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    # The API lets that UI's origin, as published, call the codec from the browser.
    published = [str(port).split(":") for port in SERVICES["temporal-ui"]["ports"]]
    origin = INTERPOLATION.fullmatch(environment("api")["TEMPORAL_UI_ORIGIN"])
    assert origin and origin["arg"] == f"http://localhost:{published[0][-2]}"
