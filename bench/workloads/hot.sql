-- hot.sql: pgbench -S's query over a hot set of 1,000 accounts, so a result
-- cache in front of PostgreSQL reaches ~100% hits after a warm-up.
\set aid random(1, 1000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
