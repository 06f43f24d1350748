#!/usr/bin/env bash
# Quick start: installs what is missing, builds, and runs the gateway. Arguments go to the gateway
# (e.g. --config my.yml). Open http://127.0.0.1:8080/ to publish your camera to an RTMP URL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Two malloc arenas for the process's threads rather than glibc's eight a core: each arena keeps the
# most it ever held, so a gateway with a thread per core otherwise ends days of use holding more.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node dist/server/server.js "$@"
