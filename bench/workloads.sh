# bench/workloads.sh - what pgbench runs (sourced by pgbench-compare.sh).
#
# A workload NAME is a few table entries:
#   WL_ARGS[NAME]      the pgbench script arguments (-S, -b ..., or -f FILE)
#   WL_DESC[NAME]      one line for the report
#   WL_MODES[NAME]     pgbench -M modes it makes sense in (space separated; MODES= filters further)
#   WL_WARMUP_S[NAME]  seconds of unrecorded warm-up per (mode, target) before its first
#                      measured cell, at 8 clients; 0 = none.  A caching target needs this so a
#                      hot-set workload measures hits, not the cache filling up.
# and optionally a function  wl_NAME_before_run TARGET  that runs before every measured run
# (e.g. to invalidate a cache through the target so a run starts cold).
# Select workloads with WORKLOADS="select hot heavy" (default: select).

declare -A WL_ARGS WL_DESC WL_MODES WL_WARMUP_S

# pgbench's builtin select-only script
WL_ARGS[select]="-S"
WL_DESC[select]="pgbench -S: SELECT abalance FROM pgbench_accounts WHERE aid = :aid, aid uniform over all $((SCALE * 100000)) rows"
WL_MODES[select]="simple extended prepared"
WL_WARMUP_S[select]=0

# the same primary-key lookup over a hot set of 1,000 rows (a result cache gets ~100% hits)
WL_ARGS[hot]="-f $BENCH_DIR/workloads/hot.sql"
WL_DESC[hot]="workloads/hot.sql: the -S query over a hot set of 1,000 rows (aid 1..1000)"
WL_MODES[hot]="simple extended prepared"
WL_WARMUP_S[hot]=3

# an expensive aggregate with 10 distinct results (seq scan of pgbench_accounts each time)
WL_ARGS[heavy]="-s $SCALE -f $BENCH_DIR/workloads/heavy.sql"
WL_DESC[heavy]="workloads/heavy.sql: count/sum/avg over pgbench_accounts WHERE bid = :bid ($SCALE distinct results, full scan each)"
WL_MODES[heavy]="simple extended prepared"
WL_WARMUP_S[heavy]=3

# pgbench's default read-write script (TPC-B-like: 3 UPDATEs, 1 SELECT, 1 INSERT per
# transaction): the cost of invalidation on a write-heavy workload.
WL_ARGS[tpcb]="-b tpcb-like"
WL_DESC[tpcb]="pgbench -b tpcb-like: the default read-write script (3 UPDATEs, a SELECT and an INSERT per transaction)"
WL_MODES[tpcb]="simple extended prepared"
WL_WARMUP_S[tpcb]=0
