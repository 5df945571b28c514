# One image for every process of the platform: each service's web server, Celery worker and beat, consumers,
# the market-data feed, its migrations, the Kafka topic and JWT key set-up, and the gateway watcher.
# compose.yaml picks the service with `working_dir` (/app/<service>) and the process with `command`.
# Only PyPI packages are downloaded while building.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1

WORKDIR /app

# The pinned set is [project].dependencies of the root pyproject.toml, the same list
# `manage_all.py bootstrap` installs. It gets a layer of its own so a code change does not reinstall it.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The shared package, editable as in the virtualenv: `common` imports from /app/common.
COPY common/ ./common/
RUN pip install -e common

COPY . ./

# Processes run unprivileged; the code stays read-only to them (Celery beat keeps its schedule in /tmp).
# The folders compose mounts named volumes on belong to that user, so a new volume starts writable by it:
# /run/jwt/{private,public} (the JWT key pair, written by the jwt-keys one-shot) and /run/platform (the
# gateway watcher's PLATFORM_RUN_DIR, shared with the nginx container). The container scripts of
# infra/docker/ stay runnable whatever mode the build context gave them.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin platform \
    && mkdir -p /run/jwt/private /run/jwt/public /run/platform \
    && chown platform /run/jwt/private /run/jwt/public /run/platform \
    && chmod 0700 /run/jwt/private \
    && chmod 0755 infra/docker/*.sh infra/docker/bin/*
USER platform

EXPOSE 8000
