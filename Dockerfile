# One image for every aaltohub service; docker-compose picks the subcommand.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    AALTOHUB_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY eventlog ./eventlog
COPY ingest ./ingest
COPY projector ./projector
COPY api ./api
COPY aaltohub ./aaltohub
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data aaltohub \
    && mkdir -p /data && chown aaltohub /data

USER aaltohub
VOLUME ["/data"]
CMD ["aaltohub", "--help"]
