# The gateway in a container. WebRTC media needs the UDP port range published (or host networking)
# and GATEWAY_WEBRTC_ICE_ADDRESSES set to the address browsers reach the host at.

# Build stage: the npm packages, mediasoup's worker compiled against Debian's libraries (its own
# install would download one), the TypeScript build.
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      python3 g++ pkg-config meson ninja-build libuv1-dev libssl-dev libsrtp2-dev libusrsctp-dev \
      libabsl-dev libflatbuffers-dev flatbuffers-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN MEDIASOUP_WORKER_BIN=skip npm ci --no-audit --no-fund
COPY . .
RUN GATEWAY_CACHE_DIR=/tmp/cache bash scripts/mediasoup/worker.sh && rm -rf /tmp/cache \
    && npm run build && npm prune --omit=dev

# Run stage: ffmpeg and the libraries the mediasoup worker links to, no compiler.
FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ffmpeg ca-certificates libuv1 libssl3 libsrtp2-1 libusrsctp2 libabsl20220623 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app /app
# The gateway's own records (run) and its kept pushes (data, a volume: they outlive the container).
RUN mkdir -p /app/run /app/data && chown node:node /app/run /app/data
VOLUME ["/app/data"]
ENV GATEWAY_HTTP_HOST=0.0.0.0
# Two malloc arenas, as scripts/start.sh sets (see "Days of streaming" in docs/how-it-works.md).
ENV MALLOC_ARENA_MAX=2
EXPOSE 8080/tcp 40000-49999/udp
USER node
CMD ["node", "dist/server/server.js"]
