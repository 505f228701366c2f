# Leadflow: one image for the API (`leadflow serve`, the default) and the worker
# (`leadflow worker`). Configuration comes from LEADFLOW_* environment variables; see
# docs/operations.md ("Container image").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEADFLOW_DATA_DIR=/data \
    LEADFLOW_PORT=8000

# An unprivileged user owning only the data directory.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin leadflow \
    && mkdir -p /data \
    && chown leadflow:leadflow /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /src

WORKDIR /data
USER leadflow
VOLUME ["/data"]
EXPOSE 8000

# Ready = the process answers and the database is reachable.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

CMD ["leadflow", "serve", "--host", "0.0.0.0"]
