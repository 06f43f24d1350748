#!/usr/bin/env bash
# The benchmark: startup time, added latency, cost per push and capacity, each beside its target.
# Installs what it needs (as the tests do), builds, and runs the gateway as its own process.
# Arguments go to bench/run.ts: --quick, --only startup,sdk,latency,fanout,audio,resilience,capacity,overload, --steps 8,16, --out F.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
exec npx tsx bench/run.ts "$@"
