#!/usr/bin/env bash
# The benchmark: startup time, added latency, cost per push and capacity, each beside its target,
# and the same figures for a peer (Janus) in the same run.
# Installs what it needs (as the tests do, and Debian's janus for the peer section), builds, and
# runs the gateway as its own process.
# Arguments go to bench/run.ts: --quick, --only startup,sdk,latency,frame-path,drift,fanout,outputs,audio,resilience,stalls,isolation,capacity,overload,cluster,mixer,peer,thumbnails,uploads, --steps 8,16, --out F.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
if ! dpkg-query -W -f='${Status}' janus 2>/dev/null | grep -q "install ok installed"; then
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q janus
  # The package's own service would listen on every address: the benchmark runs its own Janus.
  if [[ -d /run/systemd/system ]]; then "${sudo[@]}" systemctl disable --now janus || true; fi
fi
# Its own process hosts up to 72 synthetic publishers and the RTMP receiver: more heap than Node's
# default, so that the load generator is never what ends a run (its memory is printed per section).
exec node --max-old-space-size=8192 --import tsx bench/run.ts "$@"
