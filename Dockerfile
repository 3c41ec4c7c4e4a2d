# syntax=docker/dockerfile:1
#
# One image for both binaries; docker-compose.yml runs it as `room-service`
# or as `gateway`.
#
#   docker build -t chat .
#   docker run --rm -p 3000:3000 chat gateway --room-services http://host.docker.internal:50051
#
# The build uses BuildKit cache mounts (the default builder of Docker 23+ and
# of `docker compose`), so a rebuild after a source change recompiles only the
# workspace's own crates, not every dependency.

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src
# The whole workspace (less what .dockerignore leaves out): cargo needs every
# member's manifest, and proto/ compiles its .proto files with protox, so no
# protoc is needed here.
COPY . .
# The binaries are copied out of the cached target directory, which is not
# part of the image layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --package room-service --package gateway \
    && mkdir -p /out \
    && cp target/release/room-service target/release/health-probe target/release/gateway /out/

FROM debian:bookworm-slim AS runtime
# ca-certificates: for a REDIS_URL or room-service address over TLS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 chat \
    && useradd --system --uid 10001 --gid chat --no-create-home --shell /usr/sbin/nologin chat \
    # Uploaded files (FILES_DIR): a named volume mounted here starts out
    # with this folder's owner, so the chat user can write to it.
    && mkdir -p /var/lib/chat/files \
    && chown chat:chat /var/lib/chat/files
COPY --from=builder /out/room-service /out/health-probe /out/gateway /usr/local/bin/
# The health check of docker-compose.yml (bash + /dev/tcp: no curl needed).
COPY deploy/http-ok /usr/local/bin/http-ok
COPY static /app/static

ENV STATIC_DIR=/app/static \
    FILES_DIR=/var/lib/chat/files \
    RUST_LOG=info
USER chat:chat
# gateway HTTP/WebSocket, room-service gRPC, room-service metrics.
EXPOSE 3000 50051 9091
# Both binaries drain on SIGTERM, which is what `docker stop` sends.
STOPSIGNAL SIGTERM
CMD ["gateway"]
