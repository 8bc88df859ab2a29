# The hookstream image: one image, three roles, chosen by the command:
#   docker run IMAGE receivers | worker | topics   (any `hookstream` subcommand works)
# Settings are HOOKSTREAM_* environment variables (SPEC §3); docker-compose.yml wires a full stack.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY hookstream/ hookstream/
COPY receivers/ receivers/
COPY processor/ processor/
# Runtime dependencies only (no dev extras). Every dependency ships a manylinux wheel for CPython 3.11,
# so the slim image needs no compiler.
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

# A numeric, non-root user, so Kubernetes' runAsNonRoot can verify it. The worker keeps its local state
# under $HOME/.cache/hookstream (HOOKSTREAM_CACHE_DIR), so the home directory must be writable.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/hookstream hookstream
USER 10001:10001
WORKDIR /home/hookstream

# 8080: receivers (webhooks, /healthz, /readyz, /metrics); 6066: worker (/metrics).
EXPOSE 8080 6066

# No HEALTHCHECK here: the right probe depends on the role (receivers answer /readyz on 8080, a worker
# only listens on 6066), so docker-compose.yml and the Kubernetes manifests define one per service.
ENTRYPOINT ["hookstream"]
CMD ["--help"]
