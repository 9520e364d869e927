-- hot.sql: pgbench -S's query over a hot set of accounts (1,000 by default:
-- pgbench-compare.sh passes -D hot_rows=$HOT_ROWS), so a result cache in front of
-- PostgreSQL reaches ~100% hits after the fill pass.
\set aid random(1, :hot_rows)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
