-- Corpus for TestCorpus. Each entry starts with a "-- name: NAME" line and
-- holds the SQL text up to the next one, exactly as a client would send it
-- (one Query message or one Parse). corpus.golden holds the reviewed analysis
-- of each entry; regenerate it with `go test ./query -update` and review the
-- diff by hand.
--
-- Sources: pgbench's built-in scripts and initialization; TPC-H-like
-- reporting queries; SQL as Django, Rails/ActiveRecord, Hibernate 6 and
-- Prisma generate it; pg_dump, psql and driver session setup; hand-written
-- cases for the rules (CTE scoping, locking clauses, volatile and session
-- functions, data-modifying CTEs, SELECT INTO, DDL, GRANT, transaction and
-- session control, side effects, hints, multi-statement text, syntax errors).

-- name: pgbench/tpcb-update-accounts
UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;
-- name: pgbench/tpcb-select-balance
SELECT abalance FROM pgbench_accounts WHERE aid = $1;
-- name: pgbench/tpcb-update-tellers
UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;
-- name: pgbench/tpcb-update-branches
UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;
-- name: pgbench/tpcb-insert-history
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);
-- name: pgbench/begin
BEGIN;
-- name: pgbench/end
END;
-- name: pgbench/simple-protocol-update
UPDATE pgbench_accounts SET abalance = abalance + -2301 WHERE aid = 45123;
-- name: pgbench/simple-protocol-select
SELECT abalance FROM pgbench_accounts WHERE aid = 45123;
-- name: pgbench/init-drop
drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers
-- name: pgbench/init-create-history
create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))
-- name: pgbench/init-create-tellers
create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)
-- name: pgbench/init-truncate
truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers
-- name: pgbench/init-insert-branches
insert into pgbench_branches(bid,bbalance) values(1,0)
-- name: pgbench/init-copy
copy pgbench_accounts from stdin with (freeze on)
-- name: pgbench/init-server-side-generate
insert into pgbench_accounts(aid,bid,abalance,filler) select aid, (aid - 1) / 100000 + 1, 0, '' from generate_series(1, 100000) as aid
-- name: pgbench/init-primary-key
alter table pgbench_branches add primary key (bid)
-- name: pgbench/init-foreign-key
alter table pgbench_tellers add constraint pgbench_tellers_bid_fkey foreign key (bid) references pgbench_branches
-- name: pgbench/init-vacuum
vacuum analyze pgbench_branches
-- name: pgbench/scale-check
select count(*) from pgbench_branches
-- name: pgbench/partition-check
select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral (select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = 'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1

-- name: tpch/q1-pricing-summary
SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price,
       sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price,
       sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge,
       avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc,
       count(*) AS count_order
FROM lineitem
WHERE l_shipdate <= date '1998-12-01' - interval '90' day
GROUP BY l_returnflag, l_linestatus
ORDER BY l_returnflag, l_linestatus
-- name: tpch/q3-shipping-priority
SELECT l_orderkey, sum(l_extendedprice * (1 - l_discount)) AS revenue, o_orderdate, o_shippriority
FROM customer, orders, lineitem
WHERE c_mktsegment = 'BUILDING' AND c_custkey = o_custkey AND l_orderkey = o_orderkey
  AND o_orderdate < date '1995-03-15' AND l_shipdate > date '1995-03-15'
GROUP BY l_orderkey, o_orderdate, o_shippriority
ORDER BY revenue DESC, o_orderdate
LIMIT 10
-- name: tpch/q4-order-priority-exists
SELECT o_orderpriority, count(*) AS order_count
FROM orders
WHERE o_orderdate >= date '1993-07-01' AND o_orderdate < date '1993-07-01' + interval '3' month
  AND EXISTS (SELECT * FROM lineitem WHERE l_orderkey = o_orderkey AND l_commitdate < l_receiptdate)
GROUP BY o_orderpriority
ORDER BY o_orderpriority
-- name: tpch/q5-local-supplier-joins
SELECT n_name, sum(l_extendedprice * (1 - l_discount)) AS revenue
FROM customer
JOIN orders ON c_custkey = o_custkey
JOIN lineitem ON l_orderkey = o_orderkey
JOIN supplier ON l_suppkey = s_suppkey AND c_nationkey = s_nationkey
JOIN nation ON s_nationkey = n_nationkey
JOIN region ON n_regionkey = r_regionkey
WHERE r_name = $1 AND o_orderdate >= $2::date AND o_orderdate < $2::date + interval '1 year'
GROUP BY n_name
ORDER BY revenue DESC
-- name: tpch/q6-forecast-revenue
SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem
WHERE l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01'
  AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24
-- name: tpch/q10-returned-items
SELECT c_custkey, c_name, sum(l_extendedprice * (1 - l_discount)) AS revenue, c_acctbal, n_name, c_address, c_phone, c_comment
FROM customer, orders, lineitem, nation
WHERE c_custkey = o_custkey AND l_orderkey = o_orderkey AND o_orderdate >= date '1993-10-01'
  AND o_orderdate < date '1993-10-01' + interval '3' month AND l_returnflag = 'R' AND c_nationkey = n_nationkey
GROUP BY c_custkey, c_name, c_acctbal, c_phone, n_name, c_address, c_comment
ORDER BY revenue DESC
LIMIT 20
-- name: tpch/q13-customer-distribution
SELECT c_count, count(*) AS custdist
FROM (SELECT c_custkey, count(o_orderkey)
      FROM customer LEFT OUTER JOIN orders ON c_custkey = o_custkey AND o_comment NOT LIKE '%special%requests%'
      GROUP BY c_custkey) AS c_orders (c_custkey, c_count)
GROUP BY c_count
ORDER BY custdist DESC, c_count DESC
-- name: tpch/q15-top-supplier-cte
WITH revenue0 (supplier_no, total_revenue) AS (
  SELECT l_suppkey, sum(l_extendedprice * (1 - l_discount)) FROM lineitem
  WHERE l_shipdate >= date '1996-01-01' AND l_shipdate < date '1996-04-01'
  GROUP BY l_suppkey)
SELECT s_suppkey, s_name, s_address, s_phone, total_revenue
FROM supplier, revenue0
WHERE s_suppkey = supplier_no AND total_revenue = (SELECT max(total_revenue) FROM revenue0)
ORDER BY s_suppkey
-- name: tpch/q15-view-variant-multi
create view revenue0 (supplier_no, total_revenue) as
  select l_suppkey, sum(l_extendedprice * (1 - l_discount)) from lineitem
  where l_shipdate >= date '1996-01-01' and l_shipdate < date '1996-04-01' group by l_suppkey;
select s_suppkey, s_name, total_revenue from supplier, revenue0
  where s_suppkey = supplier_no and total_revenue = (select max(total_revenue) from revenue0) order by s_suppkey;
drop view revenue0;
-- name: tpch/q17-correlated-subquery
SELECT sum(l_extendedprice) / 7.0 AS avg_yearly
FROM lineitem, part
WHERE p_partkey = l_partkey AND p_brand = 'Brand#23' AND p_container = 'MED BOX'
  AND l_quantity < (SELECT 0.2 * avg(l_quantity) FROM lineitem WHERE l_partkey = p_partkey)
-- name: tpch/q18-in-subquery-having
SELECT c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice, sum(l_quantity)
FROM customer, orders, lineitem
WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem GROUP BY l_orderkey HAVING sum(l_quantity) > 300)
  AND c_custkey = o_custkey AND o_orderkey = l_orderkey
GROUP BY c_name, c_custkey, o_orderkey, o_orderdate, o_totalprice
ORDER BY o_totalprice DESC, o_orderdate
LIMIT 100
-- name: tpch/q20-nested-in
SELECT s_name, s_address FROM supplier, nation
WHERE s_suppkey IN (
    SELECT ps_suppkey FROM partsupp
    WHERE ps_partkey IN (SELECT p_partkey FROM part WHERE p_name LIKE 'forest%')
      AND ps_availqty > (SELECT 0.5 * sum(l_quantity) FROM lineitem
                         WHERE l_partkey = ps_partkey AND l_suppkey = ps_suppkey
                           AND l_shipdate >= date '1994-01-01' AND l_shipdate < date '1995-01-01'))
  AND s_nationkey = n_nationkey AND n_name = 'CANADA'
ORDER BY s_name
-- name: tpch/q21-exists-not-exists
SELECT s_name, count(*) AS numwait
FROM supplier, lineitem l1, orders, nation
WHERE s_suppkey = l1.l_suppkey AND o_orderkey = l1.l_orderkey AND o_orderstatus = 'F'
  AND l1.l_receiptdate > l1.l_commitdate
  AND EXISTS (SELECT * FROM lineitem l2 WHERE l2.l_orderkey = l1.l_orderkey AND l2.l_suppkey <> l1.l_suppkey)
  AND NOT EXISTS (SELECT * FROM lineitem l3 WHERE l3.l_orderkey = l1.l_orderkey AND l3.l_suppkey <> l1.l_suppkey
                  AND l3.l_receiptdate > l3.l_commitdate)
  AND s_nationkey = n_nationkey AND n_name = 'SAUDI ARABIA'
GROUP BY s_name
ORDER BY numwait DESC, s_name
LIMIT 100
-- name: tpch/q22-substring-not-exists
SELECT cntrycode, count(*) AS numcust, sum(c_acctbal) AS totacctbal
FROM (SELECT substring(c_phone FROM 1 FOR 2) AS cntrycode, c_acctbal FROM customer
      WHERE substring(c_phone FROM 1 FOR 2) IN ('13', '31', '23', '29', '30', '18', '17')
        AND c_acctbal > (SELECT avg(c_acctbal) FROM customer WHERE c_acctbal > 0.00
                         AND substring(c_phone FROM 1 FOR 2) IN ('13', '31', '23', '29', '30', '18', '17'))
        AND NOT EXISTS (SELECT * FROM orders WHERE o_custkey = c_custkey)) AS custsale
GROUP BY cntrycode
ORDER BY cntrycode
-- name: report/window-functions
SELECT o_custkey, o_orderdate, o_totalprice,
       sum(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderdate ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_total,
       rank() OVER w AS price_rank,
       lag(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderdate) AS previous,
       percent_rank() OVER w
FROM orders
WINDOW w AS (PARTITION BY o_custkey ORDER BY o_totalprice DESC)
-- name: report/grouping-sets-rollup
SELECT r_name, n_name, extract(year FROM o_orderdate) AS yr, sum(o_totalprice), grouping(r_name, n_name)
FROM orders JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey JOIN region ON n_regionkey = r_regionkey
GROUP BY ROLLUP (r_name, n_name), GROUPING SETS ((extract(year FROM o_orderdate)), ())
-- name: report/filter-and-within-group
SELECT l_shipmode,
       count(*) FILTER (WHERE l_returnflag = 'R') AS returned,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY l_extendedprice) AS median_price,
       string_agg(DISTINCT l_shipinstruct, ', ' ORDER BY l_shipinstruct)
FROM lineitem GROUP BY l_shipmode
-- name: report/set-operations
SELECT c_name AS name, 'customer' AS kind FROM customer WHERE c_acctbal > 9000
UNION ALL
SELECT s_name, 'supplier' FROM supplier WHERE s_acctbal > 9000
EXCEPT
SELECT name, kind FROM blocked_parties
INTERSECT
SELECT name, kind FROM (VALUES ('x', 'customer')) AS v(name, kind)
-- name: report/recursive-cte-hierarchy
WITH RECURSIVE subordinates AS (
  SELECT id, manager_id, name, 1 AS depth FROM employees WHERE id = $1
  UNION ALL
  SELECT e.id, e.manager_id, e.name, s.depth + 1 FROM employees e JOIN subordinates s ON e.manager_id = s.id
)
SELECT * FROM subordinates ORDER BY depth, name
-- name: report/multiple-ctes-chained
WITH regional AS (
  SELECT r_name, n_nationkey FROM region JOIN nation ON n_regionkey = r_regionkey
), sales AS (
  SELECT r_name, sum(o_totalprice) AS total FROM regional JOIN customer ON c_nationkey = n_nationkey
  JOIN orders ON o_custkey = c_custkey GROUP BY r_name
), ranked AS MATERIALIZED (
  SELECT r_name, total, row_number() OVER (ORDER BY total DESC) AS rn FROM sales
)
SELECT * FROM ranked WHERE rn <= 3
-- name: report/lateral-top-n
SELECT c.c_name, recent.o_orderkey, recent.o_totalprice
FROM customer c
CROSS JOIN LATERAL (SELECT o_orderkey, o_totalprice FROM orders o WHERE o.o_custkey = c.c_custkey ORDER BY o_orderdate DESC LIMIT 3) recent
WHERE c.c_mktsegment = $1
-- name: report/scalar-subquery-in-select
SELECT p_name, (SELECT count(*) FROM partsupp WHERE ps_partkey = p_partkey) AS suppliers,
       (SELECT min(ps_supplycost) FROM partsupp WHERE ps_partkey = p_partkey) AS best_cost
FROM part WHERE p_size = ANY ($1::int[])
-- name: report/join-using-natural
SELECT * FROM orders JOIN lineitem USING (o_orderkey) NATURAL JOIN order_notes FULL JOIN audit.order_flags f ON f.order_id = orders.o_orderkey
-- name: report/generate-series-calendar
SELECT d::date AS day, coalesce(sum(o_totalprice), 0) AS total
FROM generate_series($1::date, $2::date, interval '1 day') AS d
LEFT JOIN orders ON o_orderdate = d::date
GROUP BY d ORDER BY d
-- name: report/unnest-with-ordinality
SELECT t.tag, t.pos, count(*) FROM articles a, unnest(a.tags) WITH ORDINALITY AS t(tag, pos) GROUP BY 1, 2
-- name: report/values-only
VALUES (1, 'one'), (2, 'two'), (3, 'three')
-- name: report/table-command
TABLE nation
-- name: report/distinct-on
SELECT DISTINCT ON (o_custkey) o_custkey, o_orderkey, o_totalprice FROM orders ORDER BY o_custkey, o_totalprice DESC
-- name: report/case-coalesce-nullif
SELECT CASE WHEN c_acctbal < 0 THEN 'negative' WHEN c_acctbal = 0 THEN 'zero' ELSE 'positive' END,
       coalesce(nullif(trim(c_comment), ''), 'n/a'), greatest(c_acctbal, 0), least(c_acctbal, 1000)
FROM customer
-- name: report/fetch-first-with-ties
SELECT * FROM orders ORDER BY o_totalprice DESC FETCH FIRST 10 ROWS WITH TIES
-- name: report/array-and-row-constructors
SELECT ARRAY(SELECT n_name FROM nation WHERE n_regionkey = r_regionkey ORDER BY n_name), ROW(r_regionkey, r_name) FROM region
-- name: report/interval-date-arithmetic
SELECT date_trunc('month', o_orderdate) AS month, count(*) FROM orders
WHERE o_orderdate BETWEEN $1 AND $1 + interval '1 year' GROUP BY 1 ORDER BY 1
-- name: report/schema-qualified
SELECT s.name, count(*) FROM sales.orders o JOIN sales.stores s ON s.id = o.store_id GROUP BY s.name
-- name: report/three-part-name
SELECT * FROM mydb.sales.orders WHERE id = $1
-- name: report/in-subquery-not-in
SELECT * FROM products WHERE id NOT IN (SELECT product_id FROM discontinued) AND category_id IN (SELECT id FROM categories WHERE active)
-- name: report/any-all-subquery
SELECT * FROM products p WHERE p.price > ALL (SELECT price FROM competitor_prices c WHERE c.sku = p.sku)
-- name: report/json-table
SELECT jt.* FROM shipments s, JSON_TABLE(s.payload, '$.items[*]' COLUMNS (sku text PATH '$.sku', qty int PATH '$.qty')) AS jt
-- name: report/sql-json-functions
SELECT JSON_VALUE(payload, '$.customer.id' RETURNING int), JSON_QUERY(payload, '$.items'), JSON_EXISTS(payload, '$.gift')
FROM shipments WHERE payload IS JSON OBJECT
-- name: report/xmltable
SELECT x.* FROM feeds f, XMLTABLE('/rss/channel/item' PASSING f.body COLUMNS title text PATH 'title') AS x
-- name: report/rows-from
SELECT * FROM ROWS FROM (generate_series(1, 3), unnest(ARRAY['a', 'b'])) AS t(n, s)

-- name: django/get-user-by-pk
SELECT "auth_user"."id", "auth_user"."password", "auth_user"."last_login", "auth_user"."is_superuser", "auth_user"."username", "auth_user"."email", "auth_user"."is_active" FROM "auth_user" WHERE "auth_user"."id" = $1 LIMIT 21
-- name: django/session-exists
SELECT 1 AS "a" FROM "django_session" WHERE "django_session"."session_key" = $1 LIMIT 1
-- name: django/session-load-expire-filter
SELECT "django_session"."session_key", "django_session"."session_data", "django_session"."expire_date" FROM "django_session" WHERE ("django_session"."expire_date" > $1 AND "django_session"."session_key" = $2) LIMIT 21
-- name: django/session-insert
INSERT INTO "django_session" ("session_key", "session_data", "expire_date") VALUES ($1, $2, $3)
-- name: django/update-last-login
UPDATE "auth_user" SET "last_login" = $1 WHERE "auth_user"."id" = $2
-- name: django/content-type-lookup
SELECT "django_content_type"."id", "django_content_type"."app_label", "django_content_type"."model" FROM "django_content_type" WHERE ("django_content_type"."app_label" = $1 AND "django_content_type"."model" = $2) LIMIT 21
-- name: django/permissions-join
SELECT "auth_permission"."id", "auth_permission"."name", "auth_permission"."content_type_id", "auth_permission"."codename" FROM "auth_permission" INNER JOIN "auth_user_user_permissions" ON ("auth_permission"."id" = "auth_user_user_permissions"."permission_id") INNER JOIN "django_content_type" ON ("auth_permission"."content_type_id" = "django_content_type"."id") WHERE "auth_user_user_permissions"."user_id" = $1 ORDER BY "django_content_type"."app_label" ASC, "django_content_type"."model" ASC, "auth_permission"."codename" ASC
-- name: django/count
SELECT COUNT(*) AS "__count" FROM "blog_entry" WHERE "blog_entry"."pub_date" >= $1
-- name: django/filter-join-paginate
SELECT "blog_entry"."id", "blog_entry"."headline", "blog_entry"."pub_date" FROM "blog_entry" INNER JOIN "blog_blog" ON ("blog_entry"."blog_id" = "blog_blog"."id") WHERE ("blog_blog"."name" = $1 AND "blog_entry"."rating" >= $2) ORDER BY "blog_entry"."pub_date" DESC LIMIT 10 OFFSET 20
-- name: django/in-list
SELECT "shop_item"."id", "shop_item"."name" FROM "shop_item" WHERE "shop_item"."id" IN ($1, $2, $3, $4, $5)
-- name: django/exists-subquery-annotation
SELECT "blog_entry"."id", EXISTS(SELECT 1 AS "a" FROM "blog_comment" U0 WHERE U0."entry_id" = ("blog_entry"."id") LIMIT 1) AS "has_comments" FROM "blog_entry" WHERE "blog_entry"."blog_id" = $1
-- name: django/subquery-outerref
SELECT "blog_blog"."id", (SELECT U0."headline" FROM "blog_entry" U0 WHERE U0."blog_id" = ("blog_blog"."id") ORDER BY U0."pub_date" DESC LIMIT 1) AS "latest" FROM "blog_blog"
-- name: django/prefetch-related
SELECT ("blog_entry_authors"."entry_id") AS "_prefetch_related_val_entry_id", "blog_author"."id", "blog_author"."name" FROM "blog_author" INNER JOIN "blog_entry_authors" ON ("blog_author"."id" = "blog_entry_authors"."author_id") WHERE "blog_entry_authors"."entry_id" IN ($1, $2, $3)
-- name: django/select-for-update
SELECT "shop_order"."id", "shop_order"."status" FROM "shop_order" WHERE "shop_order"."id" = $1 FOR UPDATE
-- name: django/select-for-update-skip-locked-of
SELECT "shop_order"."id", "shop_order"."status" FROM "shop_order" INNER JOIN "shop_customer" ON ("shop_order"."customer_id" = "shop_customer"."id") WHERE "shop_order"."status" = $1 LIMIT 10 FOR UPDATE OF "shop_order" SKIP LOCKED
-- name: django/select-for-no-key-update
SELECT "shop_stock"."id", "shop_stock"."quantity" FROM "shop_stock" WHERE "shop_stock"."sku" = $1 FOR NO KEY UPDATE
-- name: django/bulk-create-ignore-conflicts
INSERT INTO "blog_tag" ("name", "slug") VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT DO NOTHING RETURNING "blog_tag"."id"
-- name: django/bulk-update-case
UPDATE "shop_item" SET "price" = CASE WHEN ("shop_item"."id" = $1) THEN $2 WHEN ("shop_item"."id" = $3) THEN $4 ELSE NULL END WHERE "shop_item"."id" IN ($5, $6)
-- name: django/delete-cascade-collect
DELETE FROM "blog_comment" WHERE "blog_comment"."entry_id" IN ($1, $2)
-- name: django/set-time-zone
SELECT set_config('TimeZone', $1, false)
-- name: django/now-statement-timestamp
SELECT "auth_token"."key" FROM "auth_token" WHERE "auth_token"."expires" > STATEMENT_TIMESTAMP()
-- name: django/update-with-now
UPDATE "shop_order" SET "updated_at" = STATEMENT_TIMESTAMP() WHERE "shop_order"."id" = $1
-- name: django/trunc-date-at-time-zone
SELECT DATE_TRUNC('day', "events_event"."created" AT TIME ZONE 'Europe/Paris') AS "day", COUNT("events_event"."id") AS "n" FROM "events_event" GROUP BY 1 ORDER BY 1 ASC
-- name: django/jsonfield-lookups
SELECT "docs_doc"."id" FROM "docs_doc" WHERE ("docs_doc"."data" -> 'owner') = '"bob"'::jsonb AND "docs_doc"."data" @> $1::jsonb AND ("docs_doc"."data" ->> 'kind') = $2
-- name: django/count-over-paginator
SELECT "shop_item"."id", COUNT(*) OVER () AS "total" FROM "shop_item" WHERE "shop_item"."active" ORDER BY "shop_item"."id" LIMIT 25
-- name: django/icontains-upper-like
SELECT "auth_user"."id" FROM "auth_user" WHERE UPPER("auth_user"."username"::text) LIKE UPPER($1)
-- name: django/sequence-reset
SELECT setval(pg_get_serial_sequence('"shop_item"','id'), coalesce(max("id"), 1), max("id") IS NOT null) FROM "shop_item";
-- name: django/migration-create-table
CREATE TABLE "django_migrations" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" timestamp with time zone NOT NULL)
-- name: django/migration-add-fk-deferrable
ALTER TABLE "blog_entry" ADD CONSTRAINT "blog_entry_blog_id_fk_blog_blog_id" FOREIGN KEY ("blog_id") REFERENCES "blog_blog" ("id") DEFERRABLE INITIALLY DEFERRED
-- name: django/migration-create-index-like
CREATE INDEX "blog_entry_slug_like" ON "blog_entry" ("slug" varchar_pattern_ops)
-- name: django/migration-applied
SELECT "django_migrations"."id", "django_migrations"."app", "django_migrations"."name", "django_migrations"."applied" FROM "django_migrations"
-- name: django/introspection-tables
SELECT c.relname, CASE WHEN c.relispartition THEN 'p' WHEN c.relkind IN ('m', 'v') THEN 'v' ELSE 't' END, obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') AND n.nspname NOT IN ('pg_catalog', 'pg_toast') AND pg_catalog.pg_table_is_visible(c.oid)
-- name: django/savepoint
SAVEPOINT "s140234567_x1"
-- name: django/release-savepoint
RELEASE SAVEPOINT "s140234567_x1"
-- name: django/rollback-to-savepoint
ROLLBACK TO SAVEPOINT "s140234567_x1"

-- name: rails/find-by-id
SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2
-- name: rails/exists
SELECT 1 AS one FROM "users" WHERE "users"."email" = $1 LIMIT $2
-- name: rails/create-returning
INSERT INTO "users" ("email", "created_at", "updated_at") VALUES ($1, $2, $3) RETURNING "id"
-- name: rails/update
UPDATE "users" SET "name" = $1, "updated_at" = $2 WHERE "users"."id" = $3
-- name: rails/destroy
DELETE FROM "sessions" WHERE "sessions"."id" = $1
-- name: rails/schema-migrations
SELECT "schema_migrations"."version" FROM "schema_migrations" ORDER BY "schema_migrations"."version" ASC
-- name: rails/internal-metadata
SELECT "ar_internal_metadata".* FROM "ar_internal_metadata" WHERE "ar_internal_metadata"."key" = $1 LIMIT $2
-- name: rails/preload-in
SELECT "comments".* FROM "comments" WHERE "comments"."post_id" IN ($1, $2, $3)
-- name: rails/eager-load-left-outer-join
SELECT "posts"."id" AS t0_r0, "posts"."title" AS t0_r1, "comments"."id" AS t1_r0, "comments"."body" AS t1_r1 FROM "posts" LEFT OUTER JOIN "comments" ON "comments"."post_id" = "posts"."id" WHERE "posts"."published" = $1
-- name: rails/lock
SELECT "accounts".* FROM "accounts" WHERE "accounts"."id" = $1 LIMIT $2 FOR UPDATE
-- name: rails/counter-cache
UPDATE "posts" SET "comments_count" = COALESCE("comments_count", 0) + $1 WHERE "posts"."id" = $2
-- name: rails/find-each-batch
SELECT "users".* FROM "users" WHERE "users"."created_at" BETWEEN $1 AND $2 AND "users"."id" > $3 ORDER BY "users"."id" ASC LIMIT $4
-- name: rails/upsert-all
INSERT INTO "products" ("sku","price","created_at","updated_at") VALUES ('a-1', 100, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), ('b-2', 250, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) ON CONFLICT ("sku") DO UPDATE SET "price"=excluded."price","updated_at"=(CASE WHEN ("products"."price" IS NOT DISTINCT FROM excluded."price") THEN "products"."updated_at" ELSE CURRENT_TIMESTAMP END) RETURNING "id"
-- name: rails/pluck-distinct
SELECT DISTINCT "orders"."status" FROM "orders" WHERE "orders"."account_id" = $1
-- name: rails/group-count
SELECT COUNT(*) AS "count_all", "orders"."status" AS "orders_status" FROM "orders" GROUP BY "orders"."status"
-- name: rails/where-not-null-or
SELECT "users".* FROM "users" WHERE ("users"."deleted_at" IS NULL OR "users"."role" = $1) AND "users"."name" ILIKE $2
-- name: rails/connection-client-min-messages
SET client_min_messages TO 'warning'
-- name: rails/connection-standard-strings
SET standard_conforming_strings = on
-- name: rails/connection-intervalstyle
SET intervalstyle = iso_8601
-- name: rails/connection-timezone
SET SESSION timezone TO 'UTC'
-- name: rails/migration-advisory-lock
SELECT pg_try_advisory_lock(3887003863416000512)
-- name: rails/migration-advisory-unlock
SELECT pg_advisory_unlock(3887003863416000512)
-- name: rails/load-types
SELECT t.oid, t.typname FROM pg_type as t WHERE t.typname IN ('int2', 'int4', 'int8', 'oid', 'float4', 'float8', 'numeric', 'bool')
-- name: rails/current-database
SELECT current_database()
-- name: rails/show-search-path
SHOW search_path
-- name: rails/show-max-identifier-length
SHOW max_identifier_length
-- name: rails/savepoint
SAVEPOINT active_record_1
-- name: rails/release
RELEASE SAVEPOINT active_record_1
-- name: rails/rollback
ROLLBACK

-- name: hibernate/find
select u1_0.id,u1_0.email,u1_0.name,u1_0.version from users u1_0 where u1_0.id=$1
-- name: hibernate/sequence-nextval
select nextval('users_seq')
-- name: hibernate/insert
insert into users (email,name,version,id) values ($1,$2,$3,$4)
-- name: hibernate/optimistic-update
update users set email=$1,name=$2,version=$3 where id=$4 and version=$5
-- name: hibernate/delete
delete from users where id=$1
-- name: hibernate/left-join-fetch-offset
select o1_0.id,o1_0.customer_id,c1_0.id,c1_0.name,o1_0.status from orders o1_0 left join customers c1_0 on c1_0.id=o1_0.customer_id where o1_0.status=$1 offset $2 rows fetch first $3 rows only
-- name: hibernate/pessimistic-write
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=$1 for no key update of a1_0
-- name: hibernate/pessimistic-read
select a1_0.id,a1_0.balance from accounts a1_0 where a1_0.id=$1 for share of a1_0 nowait
-- name: hibernate/count
select count(*) from orders o1_0 where o1_0.created_at>=$1
-- name: hibernate/like-escape-lower
select u1_0.id from users u1_0 where lower(u1_0.email) like lower($1) escape '\'
-- name: hibernate/size-subquery
select o1_0.id from orders o1_0 where (select count(1) from order_items i1_0 where o1_0.id=i1_0.order_id)>$1
-- name: hibernate/inheritance-joined
select p1_0.id,case when b1_0.id is not null then 1 when d1_0.id is not null then 2 else 0 end,p1_0.title,b1_0.isbn,d1_0.region from products p1_0 left join books b1_0 on p1_0.id=b1_0.id left join dvds d1_0 on p1_0.id=d1_0.id where p1_0.id=$1
-- name: hibernate/create-sequence
create sequence users_seq start with 1 increment by 50
-- name: hibernate/alter-add-fk
alter table if exists orders add constraint FK14n2yb0c4qy9mb3q0gjxm9nqd foreign key (customer_id) references customers
-- name: hibernate/current-timestamp-function
select localtimestamp
-- name: hibernate/bulk-update-jpql
update orders set status=$1 where created_at<$2 and status=$3
-- name: hibernate/in-tuple
select e1_0.id from enrollment e1_0 where (e1_0.course_id,e1_0.student_id) in (($1,$2),($3,$4))

-- name: prisma/find-many
SELECT "public"."User"."id", "public"."User"."email", "public"."User"."name" FROM "public"."User" WHERE ("public"."User"."email" = $1 AND 1=1) LIMIT $2 OFFSET $3
-- name: prisma/create-returning
INSERT INTO "public"."User" ("email","name") VALUES ($1,$2) RETURNING "public"."User"."id", "public"."User"."email", "public"."User"."name"
-- name: prisma/include-in
SELECT "public"."Post"."id", "public"."Post"."title", "public"."Post"."authorId" FROM "public"."Post" WHERE "public"."Post"."authorId" IN ($1,$2,$3) OFFSET $4
-- name: prisma/update-returning
UPDATE "public"."User" SET "name" = $1 WHERE ("public"."User"."id" = $2 AND 1=1) RETURNING "public"."User"."id", "public"."User"."name"
-- name: prisma/delete
DELETE FROM "public"."Post" WHERE ("public"."Post"."id" = $1 AND 1=1)
-- name: prisma/count-subselect
SELECT COUNT(*) AS "_count._all" FROM (SELECT "public"."Post"."id" FROM "public"."Post" WHERE "public"."Post"."published" = $1 OFFSET $2) AS "sub"
-- name: prisma/relation-join-lateral-json
SELECT "t1"."id", "t1"."email", "User_posts"."__prisma_data__" AS "posts" FROM "public"."User" AS "t1" LEFT JOIN LATERAL (SELECT COALESCE(JSONB_AGG("__prisma_data__"), '[]') AS "__prisma_data__" FROM (SELECT "t4"."__prisma_data__" FROM (SELECT JSONB_BUILD_OBJECT('id', "t3"."id", 'title', "t3"."title") AS "__prisma_data__" FROM (SELECT "t2".* FROM "public"."Post" AS "t2" WHERE "t1"."id" = "t2"."authorId") AS "t3") AS "t4") AS "t5") AS "User_posts" ON true WHERE "t1"."id" = $1 LIMIT $2
-- name: prisma/upsert
INSERT INTO "public"."Tag" ("name") VALUES ($1) ON CONFLICT ("name") DO UPDATE SET "name" = $2 WHERE ("public"."Tag"."name" = $3 AND 1=1) RETURNING "public"."Tag"."id", "public"."Tag"."name"
-- name: prisma/migrate-advisory-lock
SELECT pg_advisory_lock(72707369)
-- name: prisma/migrations-table
CREATE TABLE "_prisma_migrations" ("id" VARCHAR(36) PRIMARY KEY NOT NULL, "checksum" VARCHAR(64) NOT NULL, "finished_at" TIMESTAMPTZ, "migration_name" VARCHAR(255) NOT NULL, "logs" TEXT, "rolled_back_at" TIMESTAMPTZ, "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(), "applied_steps_count" INTEGER NOT NULL DEFAULT 0)
-- name: prisma/migrations-list
SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count FROM "_prisma_migrations" ORDER BY "started_at" ASC
-- name: prisma/schema-exists
SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = $1)
-- name: prisma/server-version
SELECT current_setting('server_version_num')::integer as server_version_num, version() as version
-- name: prisma/distinct-aggregate-json
SELECT "public"."Post"."authorId", COUNT("public"."Post"."id") AS "_count$id", MAX("public"."Post"."createdAt") AS "_max$createdAt" FROM "public"."Post" WHERE "public"."Post"."tags" @> ARRAY[$1]::text[] GROUP BY "public"."Post"."authorId" HAVING COUNT("public"."Post"."id") > $2

-- name: pgdump/session-setup-multi
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;
-- name: pgdump/transaction-start
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE
-- name: pgdump/begin-repeatable-read
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY
-- name: pgdump/set-snapshot
SET TRANSACTION SNAPSHOT '00000003-0000001B-1'
-- name: pgdump/lock-table
LOCK TABLE public.orders IN ACCESS SHARE MODE
-- name: pgdump/copy-to-stdout
COPY public.orders (id, customer_id, total) TO stdout;
-- name: pgdump/copy-query-to-stdout
COPY (SELECT id, total FROM public.orders WHERE total > 100) TO STDOUT WITH (FORMAT csv, HEADER)
-- name: psql/describe-tables
SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE c.relkind IN ('r','p','')
      AND n.nspname <> 'pg_catalog'
      AND n.nspname !~ '^pg_toast'
      AND n.nspname <> 'information_schema'
  AND pg_catalog.pg_table_is_visible(c.oid)
ORDER BY 1,2;
-- name: psql/information-schema-columns
SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position
-- name: jdbc/extra-float-digits
SET extra_float_digits = 3
-- name: jdbc/application-name
SET application_name = 'PostgreSQL JDBC Driver'
-- name: pgx/load-type
select t.oid, t.typname, t.typtype, t.typrelid, t.typelem from pg_type t where t.oid = $1::regtype
-- name: psycopg/server-side-cursor
DECLARE "_django_curs_140_sync_1" NO SCROLL CURSOR WITH HOLD FOR SELECT "shop_item"."id", "shop_item"."name" FROM "shop_item" WHERE "shop_item"."price" > $1
-- name: psycopg/fetch-forward
FETCH FORWARD 2000 FROM "_django_curs_140_sync_1"
-- name: psycopg/close-cursor
CLOSE "_django_curs_140_sync_1"
-- name: pgbouncer/discard-all
DISCARD ALL

-- name: cte/name-not-a-relation
WITH active AS (SELECT id FROM users WHERE active) SELECT * FROM active JOIN orders ON orders.user_id = active.id
-- name: cte/shadows-table-of-same-name
WITH orders AS (SELECT * FROM archive.orders WHERE year = 2020) SELECT count(*) FROM orders
-- name: cte/self-reference-non-recursive-is-table
WITH t AS (SELECT * FROM t WHERE x > 0) SELECT * FROM t
-- name: cte/recursive-self-reference
WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 10) SELECT sum(n) FROM t
-- name: cte/later-cte-sees-earlier
WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b
-- name: cte/earlier-cte-cannot-see-later
WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a
-- name: cte/recursive-forward-reference
WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a
-- name: cte/qualified-name-is-table
WITH users AS (SELECT 1 AS id) SELECT * FROM public.users JOIN users u ON true
-- name: cte/nested-with-in-subquery
SELECT * FROM (WITH inner_cte AS (SELECT * FROM items) SELECT * FROM inner_cte) s JOIN inner_cte ON true
-- name: cte/inner-shadows-outer
WITH x AS (SELECT * FROM t1) SELECT * FROM x, (WITH x AS (SELECT * FROM t2) SELECT * FROM x) y
-- name: cte/scope-ends-with-subquery
SELECT (WITH c AS (SELECT 1) SELECT * FROM c), * FROM c
-- name: cte/in-exists
SELECT * FROM users u WHERE EXISTS (WITH recent AS (SELECT * FROM logins WHERE at > $1) SELECT 1 FROM recent WHERE recent.user_id = u.id)
-- name: cte/with-set-operation
WITH a AS (SELECT id FROM t1) SELECT id FROM a UNION SELECT id FROM t2 UNION SELECT id FROM a
-- name: cte/search-and-cycle
WITH RECURSIVE g(id, link) AS (SELECT id, link FROM graph WHERE id = 1 UNION ALL SELECT e.id, e.link FROM graph e JOIN g ON e.id = g.link) SEARCH DEPTH FIRST BY id SET ordercol CYCLE id SET is_cycle USING path SELECT * FROM g
-- name: cte/not-materialized
WITH w AS NOT MATERIALIZED (SELECT * FROM big_table) SELECT * FROM w WHERE key = $1

-- name: dmcte/insert-returning-into-select
WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO queue_archive SELECT * FROM moved
-- name: dmcte/select-over-update
WITH upd AS (UPDATE accounts SET balance = balance - $1 WHERE id = $2 RETURNING balance) SELECT balance FROM upd
-- name: dmcte/insert-in-cte-read-outside
WITH ins AS (INSERT INTO events (kind) VALUES ('login') RETURNING id) SELECT * FROM ins, users WHERE users.id = $1
-- name: dmcte/merge-in-cte
WITH m AS (MERGE INTO stock s USING deliveries d ON s.sku = d.sku WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty RETURNING s.sku) SELECT count(*) FROM m
-- name: dmcte/dml-cte-name-same-as-table
WITH orders AS (DELETE FROM orders WHERE created < $1 RETURNING id) SELECT count(*) FROM orders
-- name: dmcte/update-from-cte
WITH totals AS (SELECT order_id, sum(amount) AS s FROM order_lines GROUP BY order_id) UPDATE orders SET total = totals.s FROM totals WHERE orders.id = totals.order_id

-- name: lock/for-update
SELECT * FROM jobs WHERE state = 'ready' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
-- name: lock/for-share
SELECT * FROM parents WHERE id = $1 FOR SHARE
-- name: lock/for-key-share
SELECT * FROM parents WHERE id = $1 FOR KEY SHARE
-- name: lock/in-subquery
SELECT * FROM (SELECT * FROM jobs WHERE state = 'ready' FOR UPDATE) j
-- name: lock/in-cte
WITH next AS (SELECT id FROM jobs ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) SELECT * FROM next
-- name: lock/in-where-subquery
SELECT * FROM jobs WHERE id = (SELECT id FROM jobs WHERE state = 'ready' LIMIT 1 FOR NO KEY UPDATE)
-- name: lock/of-alias-not-a-relation
SELECT * FROM jobs j JOIN workers w ON w.id = j.worker_id FOR UPDATE OF j

-- name: volatile/random
SELECT * FROM quotes ORDER BY random() LIMIT 1
-- name: volatile/now
SELECT * FROM events WHERE at > now() - interval '1 hour'
-- name: volatile/current-timestamp-svf
SELECT CURRENT_TIMESTAMP
-- name: volatile/current-date-svf
SELECT * FROM holidays WHERE day = CURRENT_DATE
-- name: volatile/current-time-precision
SELECT CURRENT_TIME(3), LOCALTIME
-- name: volatile/clock-timestamp
SELECT clock_timestamp()
-- name: volatile/gen-random-uuid
SELECT gen_random_uuid()
-- name: volatile/uuid-ossp
SELECT uuid_generate_v4()
-- name: volatile/currval
SELECT currval('orders_id_seq')
-- name: volatile/pg-sleep
SELECT pg_sleep(1)
-- name: volatile/txid-current
SELECT txid_current()
-- name: volatile/pg-current-xact-id
SELECT pg_current_xact_id()
-- name: volatile/age-one-arg
SELECT name, age(birth_date) FROM people
-- name: volatile/age-two-args
SELECT name, age($1::timestamp, birth_date) FROM people
-- name: volatile/now-literal-cast
SELECT * FROM events WHERE at > 'now'::timestamptz - interval '5 minutes'
-- name: volatile/today-literal-typed
SELECT * FROM events WHERE at::date = date 'today'
-- name: volatile/computed-date-string
SELECT * FROM events WHERE at::date = concat('to', 'day')::date
-- name: volatile/date-function-of-computed-string
SELECT * FROM events WHERE at > date(lower(label))
-- name: misc/timestamp-to-date-group
SELECT at::date, count(*) FROM events GROUP BY at::date ORDER BY 1
-- name: volatile/pg-catalog-qualified-now
SELECT pg_catalog.now()
-- name: volatile/deep-in-subquery
SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE last_seen > now() - interval '1 day')
-- name: volatile/tablesample
SELECT * FROM big_table TABLESAMPLE SYSTEM (1)
-- name: volatile/tablesample-repeatable
SELECT * FROM big_table TABLESAMPLE BERNOULLI (5) REPEATABLE (42)
-- name: volatile/relation-size
SELECT pg_total_relation_size('orders')
-- name: volatile/pg-notify
SELECT pg_notify('jobs', $1)
-- name: volatile/set-config-local
SELECT set_config('app.tenant_id', '42', true)
-- name: volatile/array-sample
SELECT array_sample(ARRAY[1,2,3,4], 2)

-- name: session/current-user-svf
SELECT * FROM documents WHERE owner = current_user
-- name: session/session-user
SELECT session_user, current_role
-- name: session/user-keyword
SELECT user
-- name: session/current-schema-svf
SELECT current_schema
-- name: session/current-catalog
SELECT current_catalog
-- name: session/current-setting
SELECT * FROM tenants WHERE id = current_setting('app.tenant_id')::int
-- name: session/has-table-privilege
SELECT has_table_privilege('orders', 'SELECT')
-- name: session/backend-pid
SELECT pg_backend_pid()
-- name: session/inet-client-addr
SELECT inet_client_addr()
-- name: session/to-tsvector-default-config
SELECT * FROM docs WHERE to_tsvector(body) @@ to_tsquery($1)
-- name: session/to-tsvector-explicit-config
SELECT * FROM docs WHERE to_tsvector('english', body) @@ websearch_to_tsquery('english', $1)
-- name: session/system-user
SELECT SYSTEM_USER

-- name: catalog/pg-class-unqualified
SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'
-- name: catalog/pg-stat-activity
SELECT pid, state, query FROM pg_stat_activity WHERE datname = current_database()
-- name: catalog/pg-stat-statements
SELECT query, calls, total_exec_time FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 10
-- name: catalog/information-schema-tables
SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'
-- name: catalog/pg-settings
SELECT name, setting FROM pg_settings WHERE name LIKE 'enable%'
-- name: catalog/user-table-with-pg-prefix-qualified
SELECT * FROM public.pg_things
-- name: catalog/pg-get-viewdef
SELECT pg_get_viewdef('my_view'::regclass, true)
-- name: catalog/format-type
SELECT format_type(atttypid, atttypmod) FROM my_columns
-- name: catalog/to-regclass
SELECT to_regclass('public.orders') IS NOT NULL
-- name: catalog/pg-temp-table
SELECT * FROM pg_temp.scratch

-- name: write/insert-values
INSERT INTO t (a, b) VALUES (1, 'x')
-- name: write/insert-default-values
INSERT INTO audit_log DEFAULT VALUES
-- name: write/insert-select-join
INSERT INTO order_summary (customer_id, total) SELECT o.customer_id, sum(l.amount) FROM orders o JOIN order_lines l ON l.order_id = o.id GROUP BY o.customer_id
-- name: write/insert-on-conflict-update
INSERT INTO counters (key, n) VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET n = counters.n + 1 WHERE counters.key <> 'frozen'
-- name: write/insert-on-conflict-constraint
INSERT INTO counters (key, n) VALUES ($1, 1) ON CONFLICT ON CONSTRAINT counters_pkey DO NOTHING
-- name: write/insert-subquery-in-values
INSERT INTO invoices (customer_id, total) VALUES ($1, (SELECT sum(amount) FROM cart_items WHERE cart_id = $2))
-- name: write/update-from
UPDATE accounts a SET balance = a.balance + t.amount FROM transfers t WHERE t.account_id = a.id AND t.batch = $1
-- name: write/update-subquery-set
UPDATE products SET price = (SELECT avg(price) FROM competitor_prices c WHERE c.sku = products.sku) WHERE category = $1
-- name: write/update-multi-assign
UPDATE employees SET (salary, title) = (SELECT salary * 1.1, 'Senior ' || title FROM grades WHERE grades.id = employees.grade_id)
-- name: write/update-only
UPDATE ONLY measurements SET value = 0 WHERE value < 0
-- name: write/update-where-current-of
UPDATE stock SET qty = qty - 1 WHERE CURRENT OF stock_cursor
-- name: write/delete-using
DELETE FROM order_lines l USING orders o WHERE l.order_id = o.id AND o.status = 'cancelled'
-- name: write/delete-returning
DELETE FROM sessions WHERE expires_at < $1 RETURNING id, user_id
-- name: write/delete-exists
DELETE FROM carts c WHERE NOT EXISTS (SELECT 1 FROM cart_items i WHERE i.cart_id = c.id)
-- name: write/merge
MERGE INTO inventory i USING incoming n ON i.sku = n.sku
WHEN MATCHED AND n.qty = 0 THEN DELETE
WHEN MATCHED THEN UPDATE SET qty = i.qty + n.qty
WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (n.sku, n.qty)
-- name: write/merge-subquery-source-returning
MERGE INTO totals t USING (SELECT account_id, sum(amount) AS s FROM ledger GROUP BY account_id) l ON t.account_id = l.account_id
WHEN MATCHED THEN UPDATE SET total = l.s
WHEN NOT MATCHED BY SOURCE THEN DELETE
WHEN NOT MATCHED THEN INSERT VALUES (l.account_id, l.s)
RETURNING merge_action(), t.*
-- name: write/truncate-multiple
TRUNCATE ONLY staging_a, staging_b RESTART IDENTITY CASCADE
-- name: write/copy-from-stdin
COPY measurements (sensor_id, at, value) FROM STDIN WITH (FORMAT binary)
-- name: write/copy-from-file-where
COPY measurements FROM '/tmp/data.csv' WITH (FORMAT csv) WHERE value > 0
-- name: write/refresh-matview
REFRESH MATERIALIZED VIEW CONCURRENTLY sales_summary
-- name: write/select-into
SELECT * INTO TEMP recent_orders FROM orders WHERE created_at > $1
-- name: write/create-table-as
CREATE TABLE order_stats AS SELECT customer_id, count(*) FROM orders GROUP BY customer_id
-- name: write/create-matview
CREATE MATERIALIZED VIEW sales_summary AS SELECT region, sum(total) AS total FROM sales GROUP BY region WITH NO DATA
-- name: write/insert-with-nextval-default
INSERT INTO orders (id, customer_id) VALUES (nextval('orders_id_seq'), $1)

-- name: ddl/create-table
CREATE TABLE IF NOT EXISTS app.customers (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, created_at timestamptz NOT NULL DEFAULT now())
-- name: ddl/create-table-like-inherits
CREATE TABLE measurements_2024 (LIKE measurements_template INCLUDING ALL) INHERITS (measurements)
-- name: ddl/create-partition
CREATE TABLE events_2024_01 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')
-- name: ddl/create-temp-table
CREATE TEMP TABLE scratch (id int) ON COMMIT DROP
-- name: ddl/alter-table-add-column
ALTER TABLE users ADD COLUMN last_seen timestamptz
-- name: ddl/alter-table-attach-partition
ALTER TABLE events ATTACH PARTITION events_2024_02 FOR VALUES FROM ('2024-02-01') TO ('2024-03-01')
-- name: ddl/alter-table-rename
ALTER TABLE public.users RENAME TO accounts
-- name: ddl/alter-table-rename-column
ALTER TABLE users RENAME COLUMN name TO full_name
-- name: ddl/alter-table-set-schema
ALTER TABLE users SET SCHEMA archive
-- name: ddl/alter-table-enable-rls
ALTER TABLE documents ENABLE ROW LEVEL SECURITY
-- name: ddl/drop-table-cascade
DROP TABLE IF EXISTS public.old_orders, staging CASCADE
-- name: ddl/drop-view
DROP VIEW reporting.v_sales
-- name: ddl/drop-index-concurrently
DROP INDEX CONCURRENTLY IF EXISTS idx_orders_created
-- name: ddl/drop-function
DROP FUNCTION IF EXISTS calc_total(int, numeric)
-- name: ddl/drop-schema
DROP SCHEMA legacy CASCADE
-- name: ddl/create-index-concurrently-partial
CREATE INDEX CONCURRENTLY idx_orders_open ON orders (customer_id, lower(status)) INCLUDE (total) WHERE status <> 'closed'
-- name: ddl/create-view
CREATE OR REPLACE VIEW active_users AS SELECT u.* FROM users u WHERE u.deleted_at IS NULL AND EXISTS (SELECT 1 FROM logins l WHERE l.user_id = u.id)
-- name: ddl/create-function-plpgsql
CREATE OR REPLACE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$
-- name: ddl/create-function-sql-body
CREATE FUNCTION order_total(oid int) RETURNS numeric LANGUAGE sql STABLE BEGIN ATOMIC SELECT sum(amount) FROM order_lines WHERE order_id = oid; END
-- name: ddl/create-trigger
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_updated_at()
-- name: ddl/create-sequence
CREATE SEQUENCE IF NOT EXISTS invoice_no START 1000
-- name: ddl/alter-sequence-restart
ALTER SEQUENCE invoice_no RESTART WITH 5000
-- name: ddl/create-type-enum
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')
-- name: ddl/create-extension
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public
-- name: ddl/create-schema
CREATE SCHEMA IF NOT EXISTS reporting AUTHORIZATION report_owner
-- name: ddl/comment-on-table
COMMENT ON TABLE public.orders IS 'Customer orders'
-- name: ddl/comment-on-column
COMMENT ON COLUMN orders.total IS 'Sum of line amounts'
-- name: ddl/create-policy
CREATE POLICY tenant_isolation ON documents USING (tenant_id = current_setting('app.tenant_id')::int)
-- name: ddl/create-rule
CREATE RULE log_delete AS ON DELETE TO orders DO ALSO INSERT INTO orders_log (order_id, action) VALUES (OLD.id, 'delete')
-- name: ddl/alter-system
ALTER SYSTEM SET work_mem = '64MB'
-- name: ddl/create-database
CREATE DATABASE analytics TEMPLATE template0
-- name: ddl/alter-owner
ALTER TABLE orders OWNER TO app_owner
-- name: ddl/drop-owned
DROP OWNED BY old_role CASCADE
-- name: ddl/create-publication
CREATE PUBLICATION pub_orders FOR TABLE orders, order_lines
-- name: ddl/create-statistics
CREATE STATISTICS orders_stats (dependencies) ON customer_id, status FROM orders
-- name: ddl/alter-default-column-nextval
ALTER TABLE orders ALTER COLUMN id SET DEFAULT nextval('orders_id_seq')

-- name: grant/select-on-table
GRANT SELECT, INSERT ON TABLE public.orders, customers TO app_rw
-- name: grant/all-in-schema
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO analyst
-- name: grant/revoke
REVOKE UPDATE ON orders FROM PUBLIC
-- name: grant/execute-function
GRANT EXECUTE ON FUNCTION order_total(int) TO app_ro
-- name: grant/role-membership
GRANT admin TO alice WITH ADMIN OPTION
-- name: grant/alter-default-privileges
ALTER DEFAULT PRIVILEGES IN SCHEMA reporting GRANT SELECT ON TABLES TO analyst
-- name: grant/create-role
CREATE ROLE app_ro LOGIN PASSWORD 'secret' NOSUPERUSER
-- name: grant/alter-role
ALTER ROLE app_ro BYPASSRLS
-- name: grant/alter-role-set
ALTER ROLE app_ro SET search_path = reporting, public
-- name: grant/drop-role
DROP ROLE IF EXISTS old_role

-- name: tx/begin
BEGIN
-- name: tx/begin-serializable-read-only-deferrable
BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE
-- name: tx/start-transaction-read-write
START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE
-- name: tx/commit
COMMIT
-- name: tx/commit-and-chain
COMMIT AND CHAIN
-- name: tx/abort
ABORT
-- name: tx/savepoint
SAVEPOINT sp1
-- name: tx/release
RELEASE sp1
-- name: tx/rollback-to
ROLLBACK TO sp1
-- name: tx/prepare-transaction
PREPARE TRANSACTION 'txn-42'
-- name: tx/commit-prepared
COMMIT PREPARED 'txn-42'
-- name: tx/rollback-prepared
ROLLBACK PREPARED 'txn-42'
-- name: tx/set-transaction
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
-- name: tx/set-transaction-read-only
SET TRANSACTION READ ONLY

-- name: set/search-path-list
SET search_path TO app, "Reporting", public
-- name: set/search-path-user-literal
SET search_path = '$user', public
-- name: set/local
SET LOCAL statement_timeout = '5s'
-- name: set/time-zone
SET TIME ZONE 'Europe/Berlin'
-- name: set/time-zone-local
SET TIME ZONE LOCAL
-- name: set/names
SET NAMES 'UTF8'
-- name: set/role
SET ROLE app_ro
-- name: set/role-none
SET ROLE NONE
-- name: set/session-authorization
SET SESSION AUTHORIZATION alice
-- name: set/session-authorization-default
SET SESSION AUTHORIZATION DEFAULT
-- name: set/custom-guc
SET app.tenant_id = 42
-- name: set/to-default
SET work_mem TO DEFAULT
-- name: set/constraints
SET CONSTRAINTS ALL DEFERRED
-- name: reset/one
RESET search_path
-- name: reset/role
RESET ROLE
-- name: reset/all
RESET ALL
-- name: discard/plans
DISCARD PLANS
-- name: discard/temp
DISCARD TEMP
-- name: discard/sequences
DISCARD SEQUENCES

-- name: side/call
CALL refresh_reports($1, 'daily')
-- name: side/call-qualified
CALL billing.close_month(2024, 5)
-- name: side/do
DO $$ BEGIN PERFORM pg_sleep(0); END $$
-- name: side/listen
LISTEN jobs
-- name: side/notify
NOTIFY jobs, 'wake up'
-- name: side/unlisten-all
UNLISTEN *
-- name: side/lock
LOCK TABLE accounts, ledger IN SHARE ROW EXCLUSIVE MODE NOWAIT
-- name: side/vacuum-full
VACUUM (FULL, ANALYZE) orders, public.customers
-- name: side/analyze
ANALYZE orders (customer_id, status)
-- name: side/cluster
CLUSTER orders USING orders_pkey
-- name: side/reindex
REINDEX TABLE CONCURRENTLY orders
-- name: side/checkpoint
CHECKPOINT
-- name: side/load
LOAD 'auto_explain'
-- name: side/show-all
SHOW ALL
-- name: side/prepare
PREPARE get_user (int) AS SELECT * FROM users WHERE id = $1
-- name: side/prepare-write
PREPARE bump (int) AS UPDATE counters SET n = n + 1 WHERE id = $1
-- name: side/execute
EXECUTE get_user(42)
-- name: side/execute-param
EXECUTE get_user($1)
-- name: side/deallocate
DEALLOCATE get_user
-- name: side/deallocate-all
DEALLOCATE ALL
-- name: side/declare-cursor-for-update
DECLARE c CURSOR FOR SELECT * FROM stock WHERE qty > 0 FOR UPDATE
-- name: side/move
MOVE NEXT IN c
-- name: side/close-all
CLOSE ALL
-- name: side/explain
EXPLAIN SELECT * FROM orders WHERE id = $1
-- name: side/explain-options
EXPLAIN (COSTS OFF, FORMAT JSON) SELECT * FROM orders JOIN customers ON customers.id = orders.customer_id
-- name: side/explain-analyze-select
EXPLAIN ANALYZE SELECT count(*) FROM orders
-- name: side/explain-analyze-delete
EXPLAIN (ANALYZE, BUFFERS) DELETE FROM sessions WHERE expires_at < now()
-- name: side/explain-analyze-false-insert
EXPLAIN (ANALYZE false) INSERT INTO t VALUES (1)
-- name: side/copy-table-to
COPY orders TO '/tmp/orders.csv' CSV HEADER
-- name: side/copy-dml-to
COPY (DELETE FROM jobs WHERE done RETURNING *) TO STDOUT

-- name: func/user-function
SELECT * FROM orders WHERE order_total(id) > $1
-- name: func/user-function-qualified
SELECT billing.tax_rate(country, $1) FROM addresses
-- name: func/user-set-returning-in-from
SELECT * FROM active_sessions_for($1) s JOIN users u ON u.id = s.user_id
-- name: func/user-function-repeated-and-nested
SELECT f(1), f(2), f(g(x)), f(1, 2) FROM t
-- name: func/unknown-builtin-like-name
SELECT soundex(name), levenshtein(name, $1) FROM people
-- name: func/count-star-and-safe-builtins
SELECT count(*), lower(email), length(name), round(avg(score), 2), jsonb_build_object('a', 1) FROM people GROUP BY 2, 3
-- name: func/schema-qualified-builtin
SELECT pg_catalog.lower(name), pg_catalog.count(*) FROM people
-- name: func/user-schema-shadow-name
SELECT myapp.now(), myapp.random() FROM t
-- name: func/named-args
SELECT make_interval(days => $1), my_func(a => 1, b => 2)
-- name: func/variadic
SELECT concat_ws(',', VARIADIC $1::text[]), my_concat(VARIADIC ARRAY['a', 'b'])
-- name: func/collation-for-and-extract-syntax
SELECT COLLATION FOR (name), EXTRACT(epoch FROM created_at), name COLLATE "C", POSITION('a' IN name), OVERLAY(name PLACING 'x' FROM 1 FOR 1) FROM people
-- name: func/in-order-by-and-having
SELECT customer_id FROM orders GROUP BY customer_id HAVING score(customer_id) > 0 ORDER BY rank_fn(customer_id)

-- name: hint/no-cache
/* pgmemo:no-cache */ SELECT * FROM prices WHERE sku = $1
-- name: hint/ttl
SELECT * FROM prices WHERE sku = $1 /* pgmemo:ttl=30s */
-- name: hint/line-comment
SELECT * FROM prices -- pgmemo:ttl=5m
WHERE sku = $1
-- name: hint/several-and-unknown
/* pgmemo: ttl=10s, no-cache, shard=7 */ /* pgmemo:ttl=abc */ SELECT 1
-- name: hint/uppercase-prefix
/* PGMEMO:NO-CACHE */ SELECT * FROM prices
-- name: hint/in-string-literal-ignored
SELECT '/* pgmemo:no-cache */' AS s FROM prices
-- name: hint/not-a-hint-comment
/* cached by pgmemo: yes */ SELECT * FROM prices
-- name: hint/ttl-seconds
/* pgmemo:ttl=60 */ SELECT * FROM prices
-- name: hint/on-write
/* pgmemo:ttl=30s */ UPDATE prices SET price = $1 WHERE sku = $2
-- name: hint/sqlcommenter-style-ignored
SELECT * FROM prices /*controller='index',framework='django'*/

-- name: multi/begin-select-commit
BEGIN; SELECT * FROM accounts WHERE id = 1; COMMIT;
-- name: multi/two-reads
SELECT 1; SELECT * FROM users
-- name: multi/write-then-read
INSERT INTO t VALUES (1); SELECT count(*) FROM t;
-- name: multi/ddl-and-grant
CREATE TABLE t2 (id int); GRANT SELECT ON t2 TO PUBLIC;
-- name: multi/set-and-select
SET search_path TO app; SELECT * FROM things
-- name: multi/params-across
SELECT $1::int; SELECT $3::text
-- name: multi/same-relation-read-and-write
SELECT * FROM t; UPDATE t SET x = 1; SELECT * FROM u;
-- name: multi/trailing-semicolons
SELECT 1;;;
-- name: multi/comments-between
SELECT 1; /* pgmemo:no-cache */ SELECT 2 -- done

-- name: empty/nothing
;
-- name: empty/only-comment
/* nothing here */ -- still nothing

-- name: error/typo
SELEC * FROM users
-- name: error/from-typo
SELECT * FORM users
-- name: error/unterminated-string
SELECT 'oops FROM users
-- name: error/in-multi-statement
SELECT 1; SELECT * FROM; SELECT 3
-- name: error/trailing-comma
SELECT a, b, FROM t
-- name: error/hint-still-read
/* pgmemo:no-cache */ SELECT FROM WHERE
-- name: error/psql-meta-command
\dt
-- name: error/future-syntax
SELECT * FROM t WHERE x = 1 QUALIFY row_number() OVER () = 1

-- name: misc/select-literal
SELECT 1
-- name: misc/select-params-only
SELECT $1::int + $2::int
-- name: misc/param-high-number
SELECT * FROM t WHERE a = $1 AND b = $12
-- name: misc/only-inheritance
SELECT * FROM ONLY measurements WHERE sensor_id = $1
-- name: misc/only-and-inherited-mixed
SELECT * FROM ONLY measurements m1 JOIN measurements m2 ON m1.id = m2.id
-- name: misc/quoted-mixed-case
SELECT * FROM "MySchema"."MyTable" JOIN mytable ON true
-- name: misc/regclass-cast
SELECT count(*) FROM orders WHERE tableoid = 'orders'::regclass
-- name: misc/type-cast-timestamp-literal
SELECT * FROM events WHERE at > timestamptz '2024-01-01 00:00:00+00'
-- name: misc/string-today-not-date
SELECT * FROM tags WHERE name = 'today'
-- name: misc/subquery-in-join-on
SELECT * FROM a JOIN b ON b.id = (SELECT max(id) FROM c WHERE c.a_id = a.id)
-- name: misc/lateral-function
SELECT * FROM users u, LATERAL jsonb_array_elements(u.prefs) AS p
-- name: misc/group-by-cube
SELECT brand, size, sum(sales) FROM items_sold GROUP BY CUBE (brand, size)
-- name: misc/window-count-over
SELECT *, COUNT(*) OVER() AS full_count FROM posts WHERE author_id = $1 ORDER BY created_at DESC LIMIT 20 OFFSET 40
-- name: misc/case-insensitive-keywords
select * from Users where ID = $1
-- name: misc/values-in-from
SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(id, name) JOIN users ON users.id = v.id
-- name: misc/in-array-param
SELECT * FROM users WHERE id = ANY($1)
-- name: misc/intersect-except-parenthesized
(SELECT id FROM a ORDER BY id LIMIT 5) INTERSECT (SELECT id FROM b) EXCEPT ALL SELECT id FROM c
-- name: misc/row-locking-in-union-branch-parenthesized
SELECT id FROM a UNION ALL (SELECT id FROM b FOR SHARE)
