#!/usr/bin/env bash
# The whole test suite: installs what the tests need, type-checks, runs every test with tap and
# ends with a line "N passed, N failed" (assertions). Extra arguments go to tap (e.g. a file).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test || exit 1
npx tsc --noEmit -p tsconfig.json || { echo "0 passed, 1 failed"; exit 1; }

mkdir -p .test-output
files=("$@")
((${#files[@]})) || mapfile -t files < <(ls test/unit/*.test.ts test/integration/*.test.ts test/e2e/*.test.ts)
npx tap --reporter=tap "${files[@]}" 2>&1 | tee .test-output/tap.log
status=${PIPESTATUS[0]}

summary=$(grep -E '^# \{ total: [0-9]+' .test-output/tap.log | tail -1)
pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<< "$summary")
fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<< "$summary")
pass=${pass:-0}
fail=${fail:-0}
if [[ $status -ne 0 && $fail -eq 0 ]]; then fail=1; fi
echo "${pass} passed, ${fail} failed"
exit "$status"
