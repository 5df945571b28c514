# One image for every process of the platform: each service's web server, Celery worker and beat,
# its migrations, and the Kafka topic set-up. compose.yaml picks the service with `working_dir`
# (/app/<service>) and the process with `command`. Only PyPI packages are downloaded while building.
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
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin platform
USER platform

EXPOSE 8000
