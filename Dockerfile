# flowbot's own image: `flowbot serve` on 0.0.0.0:8080, health at /healthz.
#
# Build it with deploy/build-image (not `docker build .`): the script stages the
# context (flowbot, its dependencies from .venv, and the Debian packages the base
# lacks) so that nothing is fetched from a registry while building. See README,
# "Deploying".
#
# BASE is the Python image ./dev already has: python:3.11-slim, pulled or built
# offline by runner/offline_images.py (Debian bookworm's python3, no pip).
ARG BASE=python:3.11-slim
FROM ${BASE}

# git (GitPython's mirrors) and CA certificates, with exactly the dependencies
# the base lacks, downloaded by the host's apt against the base's dpkg status
COPY debs /tmp/debs
RUN if ls /tmp/debs/*.deb >/dev/null 2>&1; then dpkg -i /tmp/debs/*.deb >/dev/null; fi \
    && rm -rf /tmp/debs /var/cache/debconf/*-old /var/lib/dpkg/*-old

# flowbot and its runtime dependencies (the postgres extra too, never dev)
COPY site /usr/local/lib/python3.11/dist-packages/
RUN printf '#!/usr/bin/python3\nimport sys\nfrom bot.cli import main\nsys.exit(main())\n' \
        > /usr/local/bin/flowbot \
    && chmod 755 /usr/local/bin/flowbot \
    && python3 -m compileall -q /usr/local/lib/python3.11/dist-packages >/dev/null || true

# A non-root user. The Docker socket is root:docker on the host, so the container
# needs the host's docker group id as a supplementary group:
#   docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...
# (deploy/compose.yaml does this with DOCKER_GID). The data dir must be writable
# by this uid (FLOWBOT_UID in compose, chown it on the host).
ARG UID=10001
RUN echo "flowbot:x:${UID}:${UID}:flowbot:/var/lib/flowbot:/bin/sh" >> /etc/passwd \
    && echo "flowbot:x:${UID}:" >> /etc/group \
    && mkdir -p /var/lib/flowbot && chown ${UID}:${UID} /var/lib/flowbot
USER ${UID}:${UID}

ENV FLOWBOT_DATA_DIR=/var/lib/flowbot \
    FLOWBOT_HOST=0.0.0.0 \
    FLOWBOT_PORT=8080 \
    PYTHONUNBUFFERED=1
WORKDIR /var/lib/flowbot
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FLOWBOT_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["flowbot"]
CMD ["serve"]
