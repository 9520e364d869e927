-- heavy.sql: a cacheable aggregate per branch (:scale distinct results; pgbench-compare.sh
-- passes -s SCALE so :scale is the real scale factor, 10 by default).
-- There is no index on bid, so PostgreSQL scans pgbench_accounts every time
-- (tens of ms per query at scale 10).
\set bid random(1, :scale)
SELECT count(*), sum(abalance), avg(abalance) FROM pgbench_accounts WHERE bid = :bid;
