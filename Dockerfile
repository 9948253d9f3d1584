# syntax=docker/dockerfile:1
# Landlord operator image: a static-ish release build on a distroless base, running as non-root with the
# sample module catalog and core migrations baked in at /modules and /migrations (mount another catalog
# over them to change it). Nothing is written to the root filesystem, so readOnlyRootFilesystem works.

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

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/landlord /usr/local/bin/landlord
COPY modules /modules
COPY migrations /migrations
ENV LANDLORD_MODULES_DIR=/modules \
    LANDLORD_MIGRATIONS_DIR=/migrations \
    LANDLORD_LOG_FORMAT=json
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/landlord"]
CMD ["run"]
