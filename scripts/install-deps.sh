#!/usr/bin/env bash
# Installs what the gateway needs on Debian/Ubuntu: ffmpeg, and with --test also what the test
# suite needs (nginx with the RTMP module, Chromium and Firefox ESR, GStreamer, iproute2 for test network namespaces,
# redis-server for the cluster's tests, libfaketime for a wall clock that steps). Then npm packages and the build.
# Everything comes from Debian's packages and the npm registry; nothing else is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

# fonts-dejavu-core: the font a mixer writes its inputs' labels in.
want=(ffmpeg ca-certificates fonts-dejavu-core)
[[ "${1:-}" == "--test" ]] && want+=(nginx libnginx-mod-rtmp chromium firefox-esr openssl iproute2 redis-server
  # GStreamer's webrtcbin, a WebRTC client that is not a browser (kit/gst-webrtc.py)
  python3 python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gstreamer1.0-nice
  # libfaketime: steps the wall clock a gateway process sees (test/integration/long-run-clock-steps.test.ts)
  libfaketime)

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q "${missing[@]}"
  # The tests start redis-server on ports of their own; the system service a new install starts is not used.
  if [[ " ${missing[*]} " == *" redis-server "* && -d /run/systemd/system ]]; then "${sudo[@]}" systemctl disable --now redis-server || true; fi
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  # mediasoup's own install step downloads a prebuilt worker: it is skipped (npm 11 skips every
  # dependency's install scripts by default; older npm is told by this variable), and the worker is
  # built from the package's sources by scripts/mediasoup/worker.sh.
  MEDIASOUP_WORKER_BIN=skip npm ci --no-audit --no-fund
fi
# mediasoup's worker (the default WebRTC engine), built once per machine and cached outside the clone.
bash scripts/mediasoup/worker.sh
npm run --silent build
