# syntax=docker/dockerfile:1
# The ePRO app as a container image: gunicorn serving wsgi:app on port 8000, data in /data.
#
#   docker build -t pro-app .
#   docker compose up -d        # with Caddy in front for HTTPS (compose.yaml, the README)
#
# Two stages. The builder makes a virtualenv with every dependency and compiles the
# translations; the final image copies the result onto a clean python:3.11-slim. Every
# dependency ships wheels for CPython 3.11 on Linux (x86-64 and arm64), so neither stage
# needs a compiler: --only-binary makes a missing wheel fail the build instead of quietly
# needing one.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- Builder -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# The dependencies first, pinned by constraints.txt: this layer is reused until
# pyproject.toml or constraints.txt change, not at every change to the code.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write(chr(10).join(deps))" \
 && pip install --only-binary=:all: -c constraints.txt -r /tmp/requirements.txt

# Then the app. An editable install, as `make` does: the code finds questionnaires/,
# studies/ and translations/ beside the package (pro_app/settings.py, ROOT).
COPY . .
RUN pip install --no-deps -c constraints.txt -e . \
 && pybabel compile --use-fuzzy -d translations \
 && python -m compileall -q pro_app wsgi.py gunicorn.conf.py \
 && chmod 0755 deploy/docker-entrypoint.sh

# --- Final image ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="pro-app" \
      org.opencontainers.image.description="ePRO for clinical trials: questionnaires on participants' phones"

# Pango, HarfBuzz and a font for WeasyPrint (the paper forms as PDF): run-time libraries
# only, no compilers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

# An unprivileged user that owns nothing but /data. The code belongs to root and is
# read-only to the app.
RUN groupadd --system --gid 10001 pro \
 && useradd --system --uid 10001 --gid pro --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin pro \
 && install -d -o pro -g pro -m 0750 /data

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app

# MALLOC_ARENA_MAX: glibc gives each thread its own memory arena; with threaded workers
# that holds on to memory a large export freed. Two arenas are plenty for four threads.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MALLOC_ARENA_MAX=2 \
    PRO_DATABASE=/data/pro.sqlite \
    PRO_BACKUP_DIR=/data/backups \
    TMPDIR=/data/tmp \
    GUNICORN_BIND=0.0.0.0:8000

WORKDIR /app
USER pro
VOLUME /data
EXPOSE 8000

# Alive: the process answers (the database is not touched). compose.yaml asks /readyz to
# decide when the app is ready for traffic. Python's urllib, so the image needs no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# The entrypoint upgrades the database before gunicorn starts, then execs the command,
# so gunicorn gets docker's signals itself (SIGTERM: stop gracefully; SIGHUP: reload).
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["gunicorn", "--config", "/app/gunicorn.conf.py"]
