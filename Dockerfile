# The gateway in a container. WebRTC media needs the UDP port range published (or host networking)
# and GATEWAY_WEBRTC_ICE_ADDRESSES set to the address browsers reach the host at.
FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN MEDIASOUP_WORKER_BIN=skip npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev
ENV GATEWAY_HTTP_HOST=0.0.0.0
EXPOSE 8080/tcp 40000-49999/udp
USER node
CMD ["node", "dist/server/server.js"]
