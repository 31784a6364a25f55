#!/usr/bin/env bash
# Sandbox overhead per step, measured in one run for all three:
#   - /bin/true through SandboxRunner under the full default policy (what the engine pays),
#   - plain fork/exec of /bin/true,
#   - bwrap --ro-bind / / --unshare-all /bin/true (Debian's bubblewrap).
# Budget: <= 3 ms over plain fork/exec, and faster than bwrap.
#
# Usage: crates/kernos-sandbox/bench/overhead.sh [ROUNDS] [RUNS]
#   ROUNDS: interleaved rounds per run (default 300); RUNS: repeated runs (default 3).
# Exits non-zero if any run is over budget.
set -euo pipefail
cd "$(dirname "$0")/../../.."

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap for the comparison..." >&2
    apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "bwrap not found and cannot install it (need root + apt-get): comparing without it" >&2
  fi
fi

rounds="${1:-300}"
runs="${2:-3}"
cargo bench -p kernos-sandbox --bench overhead --no-run >/dev/null 2>&1 || \
  cargo bench -p kernos-sandbox --bench overhead --no-run
status=0
for i in $(seq 1 "$runs"); do
  echo "=== run $i/$runs ($rounds rounds) ==="
  out=$(BENCH_ITERS="$rounds" cargo bench -q -p kernos-sandbox --bench overhead 2>/dev/null)
  echo "$out" | grep -E 'median|overhead|faster|BUDGET|rounds'
  echo "$out" | grep -q 'BUDGET OK' || status=1
done
exit $status
