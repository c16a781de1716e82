# kinetick: the stream processor as a container (what the ECS task runs).
#
# Multi-stage: the release binary is built on a Rust toolchain image and copied alone onto a slim
# Debian runtime (CA certificates for TLS to AWS, a non-root user). Base images are build
# arguments: the defaults are the public images by tag; scripts/build-image.sh builds without a
# Docker engine or registry access, on locally made bases. For a build that cannot change under
# you, pin each base by digest (a tag moves, a digest does not):
#   docker build \
#     --build-arg BUILDER_IMAGE=docker.io/library/rust:1-bookworm@sha256:<digest> \
#     --build-arg RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim@sha256:<digest> .
# (`docker buildx imagetools inspect IMAGE` prints a tag's current digest.)
ARG BUILDER_IMAGE=docker.io/library/rust:1-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
RUN cargo build --release --locked --bin kinetick \
    && cp target/release/kinetick /usr/local/bin/kinetick

FROM ${RUNTIME_IMAGE}
RUN if ! [ -e /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update && apt-get install -y --no-install-recommends ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kinetick
COPY --from=build /usr/local/bin/kinetick /usr/local/bin/kinetick
USER 10001
# The health endpoint (`kinetick health` is the container's check) on every interface.
ENV KINETICK_HEALTH__LISTEN=0.0.0.0:8080 \
    RUST_LOG=info
EXPOSE 8080
# SIGTERM: stop reading, flush every sink, checkpoint, hand the leases over, exit 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/kinetick", "health", "--ignore-refusals", "--address", "127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/kinetick"]
CMD ["run"]
