# syntax=docker/dockerfile:1
#
# Container image of `bulk-invite`: one image for every role, the command
# picks it (`serve`, `worker`, `migrate`, `accounts create NAME`).
#
#   docker build -t bulk-invite .
#   docker run --rm -p 8080:8080 -v bulk-invite-data:/data bulk-invite
#   docker run --rm -v bulk-invite-data:/data bulk-invite accounts create acme
#
# Needs BuildKit (the default builder of current Docker and of
# `docker compose build`) for the cache mounts below.

# The builder and the runtime are the same Debian release (bookworm), so the
# binary finds the glibc and libssl it was linked against. The toolchain
# must be at least Cargo.toml's rust-version; this pins the one the project
# is developed with.
ARG RUST_VERSION=1.95

########################################################################
FROM rust:${RUST_VERSION}-bookworm AS builder

WORKDIR /app

# The full rust image already has what the bundled C code needs: a C
# compiler for SQLite and libpq, and libssl-dev + pkg-config, because the
# bundled libpq (pq-src) links the system OpenSSL for TLS to PostgreSQL.
#
# Why cache mounts rather than a "dummy main.rs" dependency layer: the
# manifest declares bench targets whose files must exist for Cargo to even
# read it, so a dummy layer breaks whenever a target is added. With the
# registry and target/ kept in BuildKit caches, a rebuild after a source
# change recompiles only this crate. (A builder without a persistent cache,
# e.g. a fresh CI runner, simply builds everything, as it would anyway.)
# The context is kept small by .dockerignore (no target/, no .git).
COPY . .

# target/ is a cache mount, so it is not part of the image: the binary is
# copied out in the same step. The release profile keeps line tables
# (`debug = 1`, for profiling); they are stripped here, which shrinks the
# binary from ~160 MB to ~34 MB while keeping symbol names for
# backtraces.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git/db,sharing=locked \
    --mount=type=cache,target=/app/target,sharing=locked \
    cargo build --release --locked --bin bulk-invite \
    && cp target/release/bulk-invite /usr/local/bin/bulk-invite \
    && strip --strip-debug /usr/local/bin/bulk-invite

########################################################################
FROM debian:bookworm-slim AS runtime

# libssl3: the bundled libpq is linked against the system OpenSSL (the
# binary does not start without libssl.so.3 / libcrypto.so.3).
# ca-certificates: the system CA roots, for anything that verifies TLS
# against them (e.g. an OpenSSL-based PostgreSQL connection with
# sslrootcert=system); the HTTPS calls to the email providers use rustls
# with its own bundled roots and would work without it.
# Versions are not pinned: Debian drops superseded point releases from its
# archive, so a pin would break the build at the next security update.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/*

# A fixed, non-root uid/gid, so a host directory bind-mounted on /data can be
# chowned to match (`chown 10001:10001 DIR`). A named volume copies /data's
# ownership from the image on first use and needs nothing.
RUN groupadd --system --gid 10001 bulk-invite \
    && useradd --system --uid 10001 --gid bulk-invite \
        --home-dir /data --no-create-home --shell /usr/sbin/nologin bulk-invite \
    && mkdir -p /data \
    && chown bulk-invite:bulk-invite /data

COPY --from=builder /usr/local/bin/bulk-invite /usr/local/bin/bulk-invite

# Listen on every interface (the default, 127.0.0.1, is unreachable from
# outside the container) and keep the SQLite database (with its -wal and
# -shm files) on the volume. For PostgreSQL set DATABASE_URL=postgres://...
ENV BIND_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/bulk-invite.db

WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# Numeric, so orchestrators can verify "runs as non-root" without reading
# /etc/passwd.
USER 10001:10001

# No HEALTHCHECK here: the same image also runs `worker`, which has no HTTP
# port and would be reported unhealthy. The service's probes are
# GET /healthz (liveness) and GET /readyz (readiness: database reachable);
# docker-compose.yml checks /readyz for the `serve` container.
#
# The binary handles SIGTERM itself (serve drains, worker finishes its
# batch), so it runs directly as PID 1 without an init.
ENTRYPOINT ["bulk-invite"]
CMD ["serve"]
