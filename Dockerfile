# One credledger node: `credledger run --config /etc/credledger/node.toml`.
#
# The node keeps its ledger in the volume /var/lib/credledger and serves its API (and the peer websocket) on port
# 8700. Mount a directory holding node.toml, the node key and the genesis at /etc/credledger, or pass another
# --config; docker-compose.yml runs four institutions this way.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/credledger
COPY pyproject.toml README.md ./
COPY credledger ./credledger
COPY ledger ./ledger
COPY consensus ./consensus
COPY node ./node
COPY verifier ./verifier
COPY cli ./cli
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/credledger --shell /usr/sbin/nologin credledger \
    && mkdir -p /var/lib/credledger \
    && chown credledger /var/lib/credledger

# A named volume mounted here starts with this directory's owner, so the node can write its ledger.
VOLUME /var/lib/credledger
USER credledger
EXPOSE 8700
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8700/readyz', timeout=2)"]
ENTRYPOINT ["credledger"]
CMD ["run", "--config", "/etc/credledger/node.toml"]
