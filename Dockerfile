# syntax=docker/dockerfile:1.7
#
# The `campus` image, in two variants:
#   docker build --target runtime -t campus:1.0.0 .           # web, maintenance, notify
#   docker build --target preview -t campus:1.0.0-preview .   # + LibreOffice and poppler
# For Graviton (the Terraform default) add `--platform linux/arm64`.
#
# The entry point is `campus`: `docker run campus:1.0.0 serve --roles web`,
# `… migrate`, `… tenant list`. Settings come from CAMPUS_* variables and DATABASE_URL
# (README, "Configuration").

ARG RUST_VERSION=1
# pg_dump must be at least as new as the server (`campus tenant export`); match the
# database's major version.
ARG PG_MAJOR=16

# ------------------------------------------------------------------ build
FROM rust:${RUST_VERSION}-bookworm AS builder
# aws-lc (the TLS crypto of the S3 client) may need cmake on some targets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Caches keep the registry and compiled dependencies between builds; the binary is copied
# out because cache mounts are not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p campus \
 && install -m 0755 target/release/campus /usr/local/bin/campus
# The RDS certificate authorities, so `campus` can verify its database over TLS
# (DATABASE_URL's `sslmode=verify-full&sslrootcert=/etc/campus/rds-ca.pem`).
RUN mkdir -p /etc/campus \
 && curl -fsSL --retry 3 -o /etc/campus/rds-ca.pem https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
 && grep -q "BEGIN CERTIFICATE" /etc/campus/rds-ca.pem

# ------------------------------------------------------------------ base
FROM debian:bookworm-slim AS base
ARG PG_MAJOR
# ca-certificates: TLS to S3, SES and providers. postgresql-client-$PG_MAJOR from the
# PostgreSQL project's repository: Debian 12 ships pg_dump 15, too old for a 16 server.
# postgresql-common only brings the repository's script and keyring; purging it deletes
# the keyring, so the repository's source entry goes too (otherwise every later
# `apt-get update`, as in the preview stage, fails on an unsigned repository).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-common \
 && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" tini \
 && apt-get purge -y --auto-remove postgresql-common \
 && rm -f /etc/apt/sources.list.d/pgdg.sources /etc/apt/sources.list.d/pgdg.list \
 && rm -rf /var/lib/apt/lists/* \
 && pg_dump --version
RUN groupadd --system --gid 10001 campus \
 && useradd --system --uid 10001 --gid campus --home-dir /home/campus --create-home --shell /usr/sbin/nologin campus
COPY --from=builder /usr/local/bin/campus /usr/local/bin/campus
COPY --from=builder /etc/campus/rds-ca.pem /etc/campus/rds-ca.pem
ENV CAMPUS_BIND=0.0.0.0:8080 \
    CAMPUS_LOG_FORMAT=json \
    HOME=/home/campus
WORKDIR /home/campus
USER campus:campus
EXPOSE 8080
# Health: the load balancer (or systemd) probes GET /readyz of the web role; the worker
# roles serve no HTTP, so one image-wide HEALTHCHECK would be wrong for them.
#checkov:skip=CKV_DOCKER_2:the web role is probed by the load balancer on /readyz; worker roles serve no HTTP, so an image-wide HEALTHCHECK would mark them unhealthy
# tini reaps LibreOffice's children and forwards SIGTERM, so `campus` drains cleanly.
# `-s` (subreaper): under ECS's own init (initProcessEnabled) tini is not PID 1.
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/campus"]
CMD ["serve"]

# ------------------------------------------------------------------ preview worker
FROM base AS preview
USER root
# Office → PDF with LibreOffice (headless, no Java), PDF → page images with poppler's
# pdftoppm, CJK fonts so Chinese documents render with real glyphs, and bubblewrap, the
# sandbox every conversion runs in (it needs user namespaces: the task's seccomp profile
# must allow them, or PDF and office previews are refused; see README).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libreoffice-core libreoffice-writer libreoffice-calc libreoffice-impress \
      poppler-utils fonts-noto-cjk fonts-wqy-microhei bubblewrap \
 && rm -rf /var/lib/apt/lists/*
USER campus:campus
CMD ["serve", "--roles", "preview"]

# ------------------------------------------------------------------ runtime (default)
FROM base AS runtime
