#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs the gateway. Arguments go to the gateway
# (e.g. --config my.yml). Open http://127.0.0.1:8080/ to publish your camera to an RTMP URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
exec node dist/server/server.js "$@"
