"""`make token`: a bearer token for the local stack, signed like the identity provider's.

    python -m devstack.token --sub alice --email alice@example.com [--name Alice] [--roles operator]

It is signed with JWT_SECRET from the environment, else with the development default that
`make dev` gives the API, so it works against a stack started without JWT_SECRET. It is
signed with JWT_ALGORITHM and names JWT_AUDIENCE and JWT_ISSUER when those are set, as the
API then requires.
"""

from __future__ import annotations

import argparse
import os
import time

from api.auth import issue_token
from infra.settings import Settings

DAY_SECONDS = 24 * 3600


DEFAULT_JWT_SECRET = str(Settings.model_fields["jwt_secret"].default)


def dev_jwt_secret() -> str:
    """JWT_SECRET if set, else the default Settings falls back to in development."""
    return os.environ.get("JWT_SECRET") or DEFAULT_JWT_SECRET


def dev_token(
    sub: str,
    email: str,
    *,
    name: str | None = None,
    roles: list[str] | None = None,
    expires_in_seconds: int = DAY_SECONDS,
) -> str:
    settings = Settings()
    return issue_token(
        dev_jwt_secret(),
        sub=sub,
        email=email,
        name=name,
        roles=roles,
        expires_in_seconds=expires_in_seconds,
        now=int(time.time()),
        algorithm=settings.jwt_algorithm,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


def _roles(values: list[str]) -> list[str]:
    # Accepts `--roles operator admin` as well as `--roles operator,admin`.
    return [role for value in values for role in value.split(",") if role]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.token", description="Print a bearer token for the local stack."
    )
    parser.add_argument("--sub", required=True, help="the caller's stable id (the JWT subject)")
    parser.add_argument("--email", required=True)
    parser.add_argument("--name")
    parser.add_argument("--roles", nargs="+", default=[], help="e.g. operator")
    parser.add_argument(
        "--expires-in", type=int, default=DAY_SECONDS, metavar="SECONDS", help="default: 1 day"
    )
    args = parser.parse_args(argv)
    print(
        dev_token(
            args.sub,
            args.email,
            name=args.name,
            roles=_roles(args.roles),
            expires_in_seconds=args.expires_in,
        )
    )


if __name__ == "__main__":
    main()
