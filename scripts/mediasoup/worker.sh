#!/usr/bin/env bash
# mediasoup's C++ worker, built here from the pinned npm package against Debian's own libraries
# (its install would download a prebuilt binary, or sources for its build, and neither is allowed).
#
#   bash scripts/mediasoup/worker.sh          build it unless cached, and put it where mediasoup looks
#   bash scripts/mediasoup/worker.sh --check  exit 0 when the worker is in place, 1 when not
#
# The binary is cached by mediasoup version, Debian release and architecture outside the clone
# (GATEWAY_CACHE_DIR, default ~/.cache/webrtc-rtmp-gateway), so a second clone on the same machine
# does not build again. A build takes 3-7 minutes on two cores. Each change to mediasoup's sources
# fails loudly when the line it changes is not found (a new mediasoup version needs a look).
set -euo pipefail
cd "$(dirname "$0")/../.."
here=scripts/mediasoup
package=node_modules/mediasoup
target=$package/worker/out/Release/mediasoup-worker

[[ -f $package/package.json ]] || { echo "mediasoup is not installed: run npm ci first" >&2; exit 1; }
version=$(node -p "require('./$package/package.json').version")
# shellcheck disable=SC1091
debian=$(. /etc/os-release && echo "${ID}${VERSION_ID:-}")
cache=${GATEWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/webrtc-rtmp-gateway}/mediasoup-worker-$version-$debian-$(uname -m)
stamp="$version $debian $(uname -m)"

installed() { [[ -x $target && -f $target.stamp && $(cat "$target.stamp") == "$stamp" ]]; }
if [[ ${1:-} == --check ]]; then installed; exit; fi
if installed; then exit 0; fi

install_cached() {
  mkdir -p "$(dirname "$target")"
  install -m 755 "$cache/mediasoup-worker" "$target"
  echo "$stamp" > "$target.stamp"
}
if [[ -x $cache/mediasoup-worker ]]; then install_cached; exit 0; fi

echo "building mediasoup $version's worker against Debian's libraries (once per machine: 3-7 minutes)"
build_packages=(python3 g++ pkg-config meson ninja-build libuv1-dev libssl-dev libsrtp2-dev libusrsctp-dev libabsl-dev libflatbuffers-dev flatbuffers-compiler)
missing=()
for pkg in "${build_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$package/worker" "$work/worker"
worker=$work/worker

# Replaces one exact text in a file, or stops the build saying what was not found.
change() {
  local file=$1 from=$2 to=$3 why=$4
  python3 - "$worker/$file" "$from" "$to" "$why" <<'PY'
import sys
path, old, new, why = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"mediasoup worker build: {path}: expected once, found {text.count(old)} times: {old!r} ({why})")
open(path, "w").write(text.replace(old, new))
PY
}

# Debian bookworm has meson 1.0.1; the worker's build asks for 1.1 and uses nothing newer.
change meson.build "meson_version: '>= 1.1.0'" "meson_version: '>= 1.0.0'" 'meson version'
# The DTLS BIO callback must pass the real result of every operation that has BIO_CB_RETURN set
# (BIO_CB_RETURN | BIO_CB_CTRL among them). Comparing with == answered 1 to BIO_get_ktls_send on
# Debian's OpenSSL, which has kernel TLS built in: no write buffer was allocated and the worker
# crashed (SIGSEGV in do_dtls1_write) on the first DTLS handshake.
change src/RTC/DtlsTransport.cpp '(operationType == BIO_CB_RETURN) ? static_cast<long>(ret) : 1;' '(operationType & BIO_CB_RETURN) ? static_cast<long>(ret) : 1;' 'DTLS BIO callback'

# Each library comes from Debian through a small meson subproject in place of the download.
mkdir -p "$worker/subprojects/downloads-not-used"
mv "$worker"/subprojects/*.wrap "$worker/subprojects/downloads-not-used/"
cp -a "$here/subprojects/." "$worker/subprojects/"

# liburing is left out: bookworm's 2.3 lacks io_uring_prep_sendto.
meson setup --wrap-mode=nodownload --buildtype=release -Db_ndebug=true -Db_pie=true -Db_staticpic=true \
  -Dms_disable_liburing=true "$work/out" "$worker" > "$work/setup.log" || { cat "$work/setup.log" >&2; exit 1; }
jobs=${GATEWAY_BUILD_JOBS:-$(nproc)}
# The flatbuffers headers are generated first: the worker's sources include them.
if grep -q '^build fbs/FBS:' "$work/out/build.ninja"; then ninja -C "$work/out" -j "$jobs" fbs/FBS > "$work/fbs.log" || { cat "$work/fbs.log" >&2; exit 1; }; fi
ninja -C "$work/out" -j "$jobs" mediasoup-worker > "$work/build.log" || { tail -50 "$work/build.log" >&2; exit 1; }

mkdir -p "$cache"
install -m 755 "$work/out/mediasoup-worker" "$cache/mediasoup-worker.new"
mv "$cache/mediasoup-worker.new" "$cache/mediasoup-worker"
install_cached
echo "mediasoup $version's worker built: $cache/mediasoup-worker"
