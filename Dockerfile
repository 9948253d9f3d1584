# syntax=docker/dockerfile:1
# Landlord operator image: a release build on a slim Debian 12 base, running as non-root (uid 65532) with the
# sample module catalog and core migrations baked in at /modules and /migrations (mount another catalog
# over them to change it). The runtime adds PostgreSQL 15's client tools, which a tenant move runs
# (pg_dump piped into pg_restore; LANDLORD_PG_BIN_DIR points at them): they must be of the servers' major
# version or newer. Nothing is written to the root filesystem, so readOnlyRootFilesystem works.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin landlord \
    && rm -rf src
COPY src src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin landlord

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin nonroot
COPY --from=build /src/target/release/landlord /usr/local/bin/landlord
COPY modules /modules
COPY migrations /migrations
ENV LANDLORD_MODULES_DIR=/modules \
    LANDLORD_MIGRATIONS_DIR=/migrations \
    LANDLORD_LOG_FORMAT=json \
    LANDLORD_PG_BIN_DIR=/usr/lib/postgresql/15/bin
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/landlord"]
CMD ["run"]
