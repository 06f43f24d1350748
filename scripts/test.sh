#!/usr/bin/env bash
# The whole test suite: installs what the tests need, type-checks, lints, looks for unused files,
# exports and dependencies (knip), runs every test with tap and ends with a line "N passed, N failed" (assertions). Extra arguments go to tap (e.g. a file).
# The whole suite measures coverage of src/ (c8, over every process and worker thread the tests
# start) and fails below COVERAGE_FLOOR. Then the tests of what differs between Node versions
# (worker threads, TLS, sockets, fetch, child processes, the file system) run again on Node 24 (the
# current LTS), taken from the npm registry's `node` package into .node24/; GATEWAY_TEST_NODE24=0
# leaves that out.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test || exit 1
npx tsc --noEmit -p tsconfig.json || { echo "0 passed, 1 failed"; exit 1; }
npm run --silent lint || { echo "0 passed, 1 failed"; exit 1; }
npm run --silent knip || { echo "0 passed, 1 failed"; exit 1; }
# tap builds its runner for package.json's plugin set at its first run in a clone, and that run's
# test processes resolved modules otherwise (puppeteer-core's import of a chromium-bidi file
# failed, in the first run only): the runner is built before any test runs.
npx tap build >/dev/null || { echo "0 passed, 1 failed"; exit 1; }

# Lines of src/ the whole suite must cover (%): docs/tests.md states it.
COVERAGE_FLOOR=94
# On Node 24, besides the unit tests: the suites whose code leans on what changes between versions.
NODE24_SUITES=(workers plane-routing worker-death rtmps https-reload rtmp-client webhooks sdk-destinations shutdown kept-pushes recording slow-clients hardening-files-secrets)

mkdir -p .test-output
total_pass=0
total_fail=0
overall=0
logs=()

# Runs tap on the files given, logging to $1; adds its assertions to the totals. With COVER set,
# under c8 (`npm run cover`), the report in .test-output/coverage.
run_tap() {
  local log=$1
  shift
  local cover=()
  if [[ -n ${COVER:-} ]]; then
    rm -rf .test-output/coverage-raw .test-output/coverage
    cover=(npm run --silent cover --)
  fi
  logs+=("$log")
  "${cover[@]}" npx tap --reporter=tap "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  local summary pass fail
  summary=$(grep -E '^# \{ total: [0-9]+' "$log" | tail -1)
  pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<< "$summary")
  fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<< "$summary")
  pass=${pass:-0}
  fail=${fail:-0}
  if [[ $status -ne 0 && $fail -eq 0 ]]; then fail=1; fi
  echo "$(basename "$log" .log): ${pass} passed, ${fail} failed"
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  [[ $status -eq 0 ]] || overall=$status
}

# A Node 24 binary from the npm registry, installed once into .node24/.
node24() {
  local bin=.node24/node_modules/node/bin/node
  if [[ ! -x $bin ]]; then
    npm install --no-save --no-audit --no-fund --prefix .node24 node@24 >/dev/null 2>&1 || return 1
  fi
  "$bin" --version >/dev/null 2>&1 || return 1
  echo "$PWD/$(dirname "$bin")"
}

files=("$@")
if ((${#files[@]})); then
  run_tap .test-output/tap.log "${files[@]}"
else
  mapfile -t files < <(ls test/unit/*.test.ts test/integration/*.test.ts test/engines/*.test.ts test/e2e/*.test.ts)
  echo "Node $(node --version): the whole suite"
  COVER=1 run_tap .test-output/tap.log "${files[@]}"
  rm -rf .test-output/coverage-raw
  lines=$(node -e 'console.log(require("./.test-output/coverage/coverage-summary.json").total.lines.pct)' 2>/dev/null)
  if [[ -z $lines ]]; then
    echo "coverage: no report"
    total_fail=$((total_fail + 1))
    overall=1
  elif node -e "process.exit(Number('$lines') >= $COVERAGE_FLOOR ? 0 : 1)"; then
    echo "coverage: ${lines}% of the lines of src/ (floor ${COVERAGE_FLOOR}%)"
  else
    echo "coverage: ${lines}% of the lines of src/, under the floor of ${COVERAGE_FLOOR}%"
    total_fail=$((total_fail + 1))
    overall=1
  fi
  if [[ ${GATEWAY_TEST_NODE24:-1} != 0 ]]; then
    if dir=$(node24); then
      files=(test/unit/*.test.ts)
      for suite in "${NODE24_SUITES[@]}"; do files+=("test/integration/$suite.test.ts"); done
      echo "Node $("$dir/node" --version): unit tests and the suites that differ between versions"
      PATH="$dir:$PATH" run_tap .test-output/tap-node24.log "${files[@]}"
    else
      echo "Node 24 could not be installed from the npm registry"
      total_fail=$((total_fail + 1))
      overall=1
    fi
  fi
fi
# What failed, each under its file, so that the end of a long log names it.
if ((total_fail)); then
  echo "failed:"
  for log in "${logs[@]}"; do
    awk -v run="$(basename "$log" .log)" '/^# Subtest: /{file=$3} /^ *not ok /{sub(/ # time=.*/, ""); print "  " run " " file ":" $0}' \
      "$log" | head -40
  done
fi
echo "${total_pass} passed, ${total_fail} failed"
exit "$overall"
