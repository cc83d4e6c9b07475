# syntax=docker/dockerfile:1
# One image for the three processes of the service (see docker-compose.yml):
#   the API (the default command), the Temporal worker (`python worker.py`) and the
#   migrations (`alembic upgrade head`).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md worker.py ./
COPY activities ./activities
COPY api ./api
COPY domain ./domain
COPY infra ./infra
COPY migrations ./migrations
COPY notifications ./notifications
COPY workflows ./workflows
# The package alone, not the `dev` extras: the emulators, servers and test tools that
# `make dev` and `make test` run have no place in production.
RUN /opt/venv/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Beside the installed package: alembic finds its scripts next to alembic.ini, and the worker
# is started as a script.
COPY alembic.ini worker.py ./
COPY migrations ./migrations
USER app
EXPOSE 8000
# One uvicorn process per container: scale with replicas, not `--workers`, which added a fixed
# delay to every request when measured.
# --timeout-keep-alive: idle connections stay open longer than a load balancer keeps them
#   (60 s is common): uvicorn's 5 s closed connections the balancer still reused, a 502 each.
# --timeout-graceful-shutdown: on SIGTERM, requests still running after 10 s are cut, so the
#   API is gone within compose's stop_grace_period. A Socket.IO long poll (up to 25 s) would
#   otherwise hold the shutdown; its client reconnects, and a close or create-intent still
#   waiting on its saga is answered the same when the client asks again.
# X-Forwarded-* headers are believed from 127.0.0.1 only (uvicorn's default): behind a proxy
# elsewhere, set FORWARDED_ALLOW_IPS to its address, never `*` on a published port.
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", \
     "--timeout-keep-alive", "75", "--timeout-graceful-shutdown", "10"]
