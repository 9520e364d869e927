#!/usr/bin/env bash
# bench/consistency.sh - the randomized consistency checker, run long.
#
# Writers (through pgmemo and directly) and readers (through pgmemo, in four pgx
# protocol modes) hammer 40 counters; every read is checked against the writes
# acknowledged before it began. Through-proxy writes: no read may be older.
# Direct writes: a stale read must be within --max-staleness. Prints the counts
# and the commit-to-invalidation delay (p50/p99/max).
#
#   OPS=200000 bench/consistency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OPS=${OPS:-200000}
PGMEMO_CHECKER_OPS=$OPS go test ./proxy -run '^TestWALConsistencyChecker$' -count=1 -v -timeout 30m 2>&1 |
    grep -E 'operations:|^(--- |ok|FAIL|PASS)' 
