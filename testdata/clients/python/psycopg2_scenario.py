"""psycopg2 through pgmemo (see ../README.md for the contract).

psycopg2 interpolates parameters on the client and sends every statement as a
simple-protocol Query; outside autocommit it sends BEGIN before the first
statement of each transaction. Covered: parameterized reads (positional and
named, strings with quotes, NULL, tuples for IN, lists as arrays, Json),
the decoded types (int, text, Decimal, timestamptz, date, bool, float, bytea,
jsonb, arrays, NULL), transactions that commit and that roll back, a failed
transaction, executemany, execute_values and execute_batch (several
statements in one Query), server-side (named) cursors read with itersize and
fetchmany (DECLARE/FETCH, never cached; plain reads after them in the same
block), a WITH HOLD cursor in autocommit,
autocommit mode, results shared between connections, errors and statements
that are never cached.

Run with Debian's /usr/bin/python3 (python3-psycopg2).
"""

import datetime
import sys
from decimal import Decimal

import psycopg2
import psycopg2.extensions as ext
import psycopg2.extras
from psycopg2.extras import Json

from scenario_common import DATABASE_URL, HIT, Proxy, result, row_repr, rows_repr

proxy = Proxy()


def shower(conn):
    """query(sql) -> list of dicts on conn, for SHOW pgmemo.last. Outside
    autocommit, psycopg2 would send BEGIN before a statement run while no
    transaction is open, and SHOW pgmemo.last would then describe that BEGIN:
    refuse, so that every check follows the statement it judges."""

    def query(sql):
        if not conn.autocommit and conn.info.transaction_status == ext.TRANSACTION_STATUS_IDLE:
            raise AssertionError(f"{sql} would follow psycopg2's implicit BEGIN")
        with conn.cursor() as c:
            c.execute(sql)
            cols = [d.name for d in c.description]
            return [dict(zip(cols, r)) for r in c.fetchall()]

    return query


def read(cur, label, sql, params=None):
    cur.execute(sql, params)
    rows = cur.fetchall()
    result(label, rows_repr(rows))
    return rows


def error_of(cur, sql, params=None):
    try:
        cur.execute(sql, params)
    except psycopg2.Error as e:
        return f"{type(e).__name__} {e.pgcode}"
    raise AssertionError(f"{sql} did not fail")


UTC = datetime.timezone.utc
PLUS2 = datetime.timezone(datetime.timedelta(hours=2))

ITEM_COLS = "id, name, price, qty, created, day, active, ratio, data, attrs, tags, scores, note"
READ_ITEM = f"SELECT {ITEM_COLS} FROM items WHERE id = %s"

# ---------------------------------------------------------------- setup
# Connection A: psycopg2's default (a transaction opened by BEGIN before the
# first statement, ended by commit() or rollback()).
conn = psycopg2.connect(DATABASE_URL)
cur = conn.cursor()
last = shower(conn)
result("server.autocommit", conn.autocommit)
result("server.isolation", conn.isolation_level)

cur.execute("SET TIME ZONE 'UTC'")  # committed with the DDL below, then tracked by pgmemo
cur.execute("""
    CREATE TABLE items (
        id      integer PRIMARY KEY,
        name    text NOT NULL,
        price   numeric(10,2),
        qty     integer NOT NULL DEFAULT 0,
        created timestamptz,
        day     date,
        active  boolean,
        ratio   double precision,
        data    bytea,
        attrs   jsonb,
        tags    text[],
        scores  integer[],
        note    text
    )""")
cur.execute("""
    CREATE TABLE events (
        id      serial PRIMARY KEY,
        item_id integer NOT NULL REFERENCES items (id),
        kind    text NOT NULL,
        amount  numeric(8,2) NOT NULL
    )""")
conn.commit()

mark = proxy.wal_mark()
seed = [
    (1, "widget", Decimal("9.99"), 10, datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
     datetime.date(2024, 1, 2), True, 0.5, b"\x00\x01\xffabc", Json({"color": "red", "size": [1, 2]}),
     ["a", "b"], [1, 2, 3], None),
    (2, "O'Brien's \"gadget\"", Decimal("1234.50"), 0, datetime.datetime(2023, 12, 31, 23, 59, 59, tzinfo=PLUS2),
     datetime.date(2023, 12, 31), False, -1.25, b"", Json({"nested": {"k": None}, "n": 1.5}),
     [], [], "n\u00f6te with \u00fcmlaut; and a backslash \\"),
    (3, "gizmo", None, 3, None, None, None, None, None, None, ["x,y", "{z}", None], [None, 7], "third"),
]
cur.execute(
    f"INSERT INTO items ({ITEM_COLS}) VALUES "
    + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(seed)),
    [v for row in seed for v in row])
result("setup.inserted", cur.rowcount)
conn.commit()
proxy.wait_wal(mark, "setup")

# ---------------------------------------------------------------- parameterized reads
# Each statement reaches pgmemo as one Query with the values inlined (shown by
# mogrify); the same values give the same text, hence the same cache key.
result("param.mogrify", cur.mogrify(READ_ITEM, (1,)).decode())

read(cur, "param.item1", READ_ITEM, (1,))
proxy.expect(last, "param.item1.first", "miss-filled")
read(cur, "param.item1", READ_ITEM, (1,))
proxy.expect(last, "param.item1.repeat", HIT)

read(cur, "param.item2", READ_ITEM, (2,))
proxy.expect(last, "param.item2.first", "miss-filled")
read(cur, "param.item2", READ_ITEM, (2,))
proxy.expect(last, "param.item2.repeat", HIT)

read(cur, "param.item3", READ_ITEM, (3,))
read(cur, "param.item3", READ_ITEM, (3,))
proxy.expect(last, "param.item3.repeat", HIT)

named = "SELECT id, name FROM items WHERE name = %(name)s AND active = %(active)s"
args = {"name": "O'Brien's \"gadget\"", "active": False}
result("param.named.mogrify", cur.mogrify(named, args).decode())
read(cur, "param.named", named, args)
read(cur, "param.named", named, args)
proxy.expect(last, "param.named.repeat", HIT)

read(cur, "param.in", "SELECT id, price FROM items WHERE id IN %s ORDER BY id", ((1, 2, 3),))
read(cur, "param.in", "SELECT id, price FROM items WHERE id IN %s ORDER BY id", ((1, 2, 3),))
proxy.expect(last, "param.in.repeat", HIT)

read(cur, "param.any", "SELECT id FROM items WHERE id = ANY(%s) ORDER BY id", ([1, 3],))
read(cur, "param.any", "SELECT id FROM items WHERE id = ANY(%s) ORDER BY id", ([1, 3],))
proxy.expect(last, "param.any.repeat", HIT)

read(cur, "param.null", "SELECT id FROM items WHERE note IS NOT DISTINCT FROM %s ORDER BY id", (None,))
read(cur, "param.null", "SELECT id FROM items WHERE note IS NOT DISTINCT FROM %s ORDER BY id", (None,))
proxy.expect(last, "param.null.repeat", HIT)

read(cur, "param.json", "SELECT id, attrs -> 'size' FROM items WHERE attrs @> %s ORDER BY id", (Json({"color": "red"}),))
read(cur, "param.json", "SELECT id, attrs -> 'size' FROM items WHERE attrs @> %s ORDER BY id", (Json({"color": "red"}),))
proxy.expect(last, "param.json.repeat", HIT)

AGG = "SELECT count(*), sum(price), max(created), min(day), bool_or(active) FROM items"
read(cur, "param.agg", AGG)
read(cur, "param.agg", AGG)
proxy.expect(last, "param.agg.repeat", HIT)

# A different value is a different key.
read(cur, "param.item-missing", READ_ITEM, (42,))
proxy.expect(last, "param.item-missing.first", "miss-filled")

# The column types as psycopg2 decoded them.
cur.execute(READ_ITEM, (1,))
result("types.item1", repr([type(v).__name__ for v in cur.fetchone()]))
result("types.description", repr([(d.name, d.type_code) for d in cur.description]))
proxy.expect(last, "types.item1", HIT)
conn.commit()

# A new transaction (BEGIN, then the read): still served from the cache.
read(cur, "param.item1", READ_ITEM, (1,))
proxy.expect(last, "param.item1.next-transaction", HIT)
conn.commit()

# ---------------------------------------------------------------- transaction that commits
read(cur, "commit.before", READ_ITEM, (1,))
proxy.expect(last, "commit.before", HIT)
cur.execute("UPDATE items SET price = price + 1, note = %s WHERE id = %s", ("updated", 1))
result("commit.updated", cur.rowcount)
# After the block's first write every read goes to the server, which sees the
# uncommitted change.
read(cur, "commit.in-transaction", READ_ITEM, (1,))
proxy.expect(last, "commit.in-transaction", "bypass", reason="transaction")
read(cur, "commit.other-row-in-transaction", READ_ITEM, (2,))
proxy.expect(last, "commit.other-row-in-transaction", "bypass", reason="transaction")
mark = proxy.wal_mark()
conn.commit()
proxy.wait_wal(mark, "commit")
read(cur, "commit.after", READ_ITEM, (1,))
proxy.expect(last, "commit.after", "miss-filled")
read(cur, "commit.after", READ_ITEM, (1,))
proxy.expect(last, "commit.after.repeat", HIT)
read(cur, "commit.agg", AGG)
proxy.expect(last, "commit.agg", "miss-filled")
conn.commit()

# The connection as a context manager: commits at the end of the block.
with conn:
    read(cur, "commit.with-block", READ_ITEM, (2,))
    proxy.expect(last, "commit.with-block.first", "miss-filled")
    read(cur, "commit.with-block", READ_ITEM, (2,))
    proxy.expect(last, "commit.with-block.repeat", HIT)
result("commit.status-after-with", conn.info.transaction_status)

# ---------------------------------------------------------------- transaction that rolls back
read(cur, "rollback.before", READ_ITEM, (1,))
proxy.expect(last, "rollback.before", HIT)
cur.execute("UPDATE items SET name = 'rolled back', qty = -1 WHERE id = 1")
read(cur, "rollback.in-transaction", READ_ITEM, (1,))
proxy.expect(last, "rollback.in-transaction", "bypass", reason="transaction")
conn.rollback()
# Nothing was committed: the entry filled before is still right, and served.
read(cur, "rollback.after", READ_ITEM, (1,))
proxy.expect(last, "rollback.after", HIT)
conn.commit()

# A failed transaction: reads go to the server (which refuses them) until ROLLBACK.
read(cur, "failed.before", READ_ITEM, (2,))
proxy.expect(last, "failed.before", HIT)
result("failed.error", error_of(cur, "SELECT 1 / (qty - qty) FROM items WHERE id = %s", (1,)))
proxy.expect_not_hit(last, "failed.error")
result("failed.read-in-failed-transaction", error_of(cur, READ_ITEM, (2,)))
proxy.expect(last, "failed.read-in-failed-transaction", "bypass", reason="failed_transaction")
conn.rollback()
read(cur, "failed.after-rollback", READ_ITEM, (2,))
proxy.expect(last, "failed.after-rollback", HIT)
conn.commit()

# ---------------------------------------------------------------- executemany
EVENTS = "SELECT count(*), sum(amount), min(id), max(id) FROM events"
read(cur, "executemany.before", EVENTS)
proxy.expect(last, "executemany.before.first", "miss-filled")
read(cur, "executemany.before", EVENTS)
proxy.expect(last, "executemany.before.repeat", HIT)
# executemany runs one INSERT (one Query) per parameter set.
cur.executemany("INSERT INTO events (item_id, kind, amount) VALUES (%s, %s, %s)",
                [(1 + i % 3, ("view", "cart", "buy")[i % 3], Decimal(i) / 4) for i in range(40)])
result("executemany.rowcount", cur.rowcount)
read(cur, "executemany.in-transaction", EVENTS)
proxy.expect(last, "executemany.in-transaction", "bypass", reason="transaction")
mark = proxy.wal_mark()
conn.commit()
proxy.wait_wal(mark, "executemany")
read(cur, "executemany.after", EVENTS)
proxy.expect(last, "executemany.after", "miss-filled")
read(cur, "executemany.after", EVENTS)
proxy.expect(last, "executemany.after.repeat", HIT)
conn.commit()

cur.executemany("UPDATE events SET amount = amount * 2 WHERE id = %(id)s", [{"id": i} for i in range(1, 6)])
result("executemany.update.rowcount", cur.rowcount)
mark = proxy.wal_mark()
conn.commit()
proxy.wait_wal(mark, "executemany.update")
read(cur, "executemany.update.after", EVENTS)
proxy.expect(last, "executemany.update.after", "miss-filled")
conn.commit()

# execute_values: one INSERT with many VALUES rows (pages of 100), RETURNING.
got = psycopg2.extras.execute_values(
    cur, "INSERT INTO events (item_id, kind, amount) VALUES %s RETURNING id, kind",
    [(2, f"bulk{i}", Decimal("0.01") * i) for i in range(5)], fetch=True)
result("execute_values.returning", rows_repr(got))
# execute_batch: several UPDATEs joined by ';' into one Query per page.
psycopg2.extras.execute_batch(cur, "UPDATE events SET kind = kind || '!' WHERE id = %s", [(i,) for i in (41, 43, 45)],
                              page_size=2)
mark = proxy.wal_mark()
conn.commit()
proxy.wait_wal(mark, "execute_batch")
read(cur, "execute_batch.after", "SELECT id, kind, amount FROM events WHERE id > 40 ORDER BY id")
proxy.expect(last, "execute_batch.after", "miss-filled")
read(cur, "execute_batch.after", "SELECT id, kind, amount FROM events WHERE id > 40 ORDER BY id")
proxy.expect(last, "execute_batch.after.repeat", HIT)
conn.commit()

# ---------------------------------------------------------------- server-side cursors
# A named cursor is DECLARE ... CURSOR WITHOUT HOLD FOR <query>, then
# FETCH FORWARD <itersize> per batch, then CLOSE: relayed, never cached.
EVENT_ROWS = "SELECT id, item_id, kind, amount FROM events ORDER BY id"
for attempt in ("first", "again"):
    with conn.cursor(name="events_iter") as nc:
        nc.itersize = 7
        nc.execute(EVENT_ROWS)
        rows = list(nc)
        result(f"cursor.iter.{attempt}", f"n={len(rows)} first={row_repr(rows[0])} last={row_repr(rows[-1])} "
                                         f"sum={sum(r[3] for r in rows)!r}")
        proxy.expect(last, f"cursor.iter.{attempt}.fetch", "miss-not-cacheable")
    conn.commit()

with conn.cursor(name="events_batches") as nc:
    nc.execute("SELECT id, kind FROM events WHERE item_id = %s ORDER BY id", (1,))
    sizes, ids = [], []
    while True:
        batch = nc.fetchmany(5)
        if not batch:
            break
        sizes.append(len(batch))
        ids.extend(r[0] for r in batch)
    result("cursor.fetchmany.sizes", sizes)
    result("cursor.fetchmany.ids", ids)
    proxy.expect(last, "cursor.fetchmany.fetch", "miss-not-cacheable")
conn.commit()

# A plain read, then a named cursor over a plain SELECT in the same block:
# DECLARE and FETCH write nothing, so the block's later reads should still be
# served from the cache.
PLAIN = "SELECT id FROM events WHERE item_id = %s ORDER BY id"
read(cur, "cursor.plain-before", PLAIN, (1,))
read(cur, "cursor.plain-before", PLAIN, (1,))
proxy.expect(last, "cursor.plain-before.repeat", HIT)
with conn.cursor(name="events_mid") as nc:
    nc.execute("SELECT count(*) FROM events WHERE item_id = %s", (1,))
    result("cursor.mid", nc.fetchall())
read(cur, "cursor.plain-after-cursor-same-block", PLAIN, (1,))
proxy.expect(last, "cursor.plain-after-cursor-same-block", HIT)
conn.commit()

# A write, then the cursor again: DECLARE always reads the server.
mark = proxy.wal_mark()
cur.execute("INSERT INTO events (item_id, kind, amount) VALUES (3, 'late', 99.99)")
conn.commit()
proxy.wait_wal(mark, "cursor.write")
with conn.cursor(name="events_iter") as nc:
    nc.itersize = 50
    nc.execute(EVENT_ROWS)
    rows = nc.fetchall()
    result("cursor.after-write", f"n={len(rows)} last={row_repr(rows[-1])}")
conn.commit()

# Plain reads in a block without cursors are served from the cache as usual.
read(cur, "cursor.plain", "SELECT id, kind FROM events WHERE item_id = 3 ORDER BY id LIMIT 5")
read(cur, "cursor.plain", "SELECT id, kind FROM events WHERE item_id = 3 ORDER BY id LIMIT 5")
proxy.expect(last, "cursor.plain.repeat", HIT)
conn.commit()

# ---------------------------------------------------------------- autocommit
connb = psycopg2.connect(DATABASE_URL)
connb.autocommit = True
curb = connb.cursor()
lastb = shower(connb)
curb.execute("SET TIME ZONE 'UTC'")  # the same settings as connection A: the same cache keys
# Connection A filled this entry; B shares it.
read(curb, "autocommit.item1", READ_ITEM, (1,))
proxy.expect(lastb, "autocommit.item1.shared", HIT)
read(curb, "autocommit.item1", READ_ITEM, (1,))
proxy.expect(lastb, "autocommit.item1.repeat", HIT)

mark = proxy.wal_mark()
curb.execute("UPDATE items SET qty = qty + 5, attrs = attrs || %s WHERE id = 1", (Json({"seen": True}),))
result("autocommit.updated", curb.rowcount)
proxy.wait_wal(mark, "autocommit.update")
read(curb, "autocommit.after-write", READ_ITEM, (1,))
proxy.expect(lastb, "autocommit.after-write", "miss-filled")
read(curb, "autocommit.after-write", READ_ITEM, (1,))
proxy.expect(lastb, "autocommit.after-write.repeat", HIT)
# A sees B's committed write, from the entry B filled.
read(cur, "autocommit.seen-by-other-connection", READ_ITEM, (1,))
proxy.expect(last, "autocommit.seen-by-other-connection", HIT)
conn.commit()

# Never cached: time functions; errors are not cached either.
curb.execute("SELECT now() >= %s", (datetime.datetime(2000, 1, 1, tzinfo=UTC),))
result("autocommit.now", curb.fetchone())
proxy.expect(lastb, "autocommit.now", "miss-not-cacheable")
for attempt in ("first", "again"):
    result(f"autocommit.error.{attempt}", error_of(curb, "SELECT 1 / (qty - qty) FROM items WHERE id = %s", (1,)))
    proxy.expect_not_hit(lastb, f"autocommit.error.{attempt}")

# An explicit block on an autocommit connection.
curb.execute("BEGIN")
read(curb, "autocommit.explicit-block", READ_ITEM, (3,))
proxy.expect(lastb, "autocommit.explicit-block.first", "miss-filled")
read(curb, "autocommit.explicit-block", READ_ITEM, (3,))
proxy.expect(lastb, "autocommit.explicit-block.repeat", HIT)
curb.execute("COMMIT")

# A WITH HOLD cursor outlives its transaction, so it works in autocommit.
with connb.cursor(name="held", withhold=True) as nc:
    nc.itersize = 10
    nc.execute("SELECT id, amount FROM events WHERE amount > %s ORDER BY id", (Decimal("5"),))
    rows = list(nc)
    result("autocommit.withhold", f"n={len(rows)} first={row_repr(rows[0])} last={row_repr(rows[-1])}")
    proxy.expect(lastb, "autocommit.withhold.fetch", "miss-not-cacheable")

# ---------------------------------------------------------------- done
connb.close()
conn.close()
sys.exit(proxy.finish())
