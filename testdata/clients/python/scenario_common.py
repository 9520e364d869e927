"""Shared helpers of the Python client scenarios (psycopg2, SQLAlchemy).

The contract is in ../README.md: `result <label> <value>` lines must be the same
in the direct and the proxy run; `check <label> ok|FAIL <detail>` lines only in
the proxy run. Checks read `SHOW pgmemo.last` on the connection whose previous
statement they judge, and `SHOW pgmemo.stats` on a separate autocommit
connection (the counters are the proxy's, for all clients), so that polling
them never opens a transaction on the connection under test.
"""

import os
import time

import psycopg2

TARGET = os.environ.get("PGMEMO_TARGET", "direct")
PROXY = TARGET == "proxy"
DATABASE_URL = os.environ["DATABASE_URL"]

# Results that serve a read from the cache.
HIT = "hit"


def norm(v):
    """A value as the scenario prints it: memoryview (psycopg2's bytea) as bytes,
    containers recursively."""
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, (list, tuple)):
        return type(v)(norm(x) for x in v)
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def row_repr(row):
    return repr(tuple(norm(v) for v in row))


def rows_repr(rows):
    return "[" + ", ".join(row_repr(r) for r in rows) + "]"


def result(label, value):
    """Prints what the client decoded; value is printed with str() (pass a repr
    when the type matters)."""
    print(f"result {label} {value}", flush=True)


def info(text):
    """Free-form, for people reading the log (not compared)."""
    print(f"# {text}", flush=True)


class Proxy:
    """Checks of how pgmemo served statements; does nothing in the direct run."""

    def __init__(self):
        self.checks = 0
        self.failed = 0
        self.hits_expected = 0
        self.mon = None
        if PROXY:
            self.mon = psycopg2.connect(DATABASE_URL)
            self.mon.autocommit = True
            self.start = self.stats()

    def close(self):
        if self.mon is not None:
            self.mon.close()

    def check(self, label, ok, detail):
        if not PROXY:
            return
        self.checks += 1
        if not ok:
            self.failed += 1
        print(f"check {label} {'ok' if ok else 'FAIL'} {detail}", flush=True)

    def last(self, query):
        """SHOW pgmemo.last through query(sql) -> list of dicts, on the
        connection under test."""
        rows = query("SHOW pgmemo.last")
        if len(rows) != 1:
            raise AssertionError(f"SHOW pgmemo.last returned {rows!r}")
        return rows[0]

    def expect(self, query, label, want, reason=None):
        """Checks that the previous statement on query's connection was served
        as want (a result such as "hit", "miss-filled", or a tuple of them), and
        with reason when given."""
        if not PROXY:
            return
        wants = want if isinstance(want, tuple) else (want,)
        last = self.last(query)
        ok = last["result"] in wants and (reason is None or last["reason"] == reason)
        if HIT in wants and ok and last["result"] == HIT:
            self.hits_expected += 1
        want_s = "|".join(wants) + (f" ({reason})" if reason is not None else "")
        self.check(label, ok, f"result={last['result']} reason={last['reason'] or '-'} want={want_s}")

    def expect_not_hit(self, query, label):
        if not PROXY:
            return
        last = self.last(query)
        self.check(label, last["result"] != HIT,
                   f"result={last['result']} reason={last['reason'] or '-'} want=not hit")

    def stats(self):
        with self.mon.cursor() as c:
            c.execute("SHOW pgmemo.stats")
            return {name: value for name, value in c.fetchall()}

    # psycopg2 sends simple queries: an autocommit write is its own
    # transaction, whose ID pgmemo cannot learn, so it is invalidated twice: at
    # once when it commits through pgmemo, and again when the replication
    # stream delivers the commit, a few milliseconds later. A result filled in
    # between is dropped by the second invalidation (it is fresh, but pgmemo
    # cannot tell), which would make the next "repeated read is a hit" check
    # depend on timing. So after each committed write the scenarios wait for
    # the stream to deliver it (replication_transactions counts committed
    # transactions with changes to this database's tables) before reading
    # again.

    def wal_mark(self):
        if not PROXY:
            return 0
        return int(self.stats()["replication_transactions"])

    def wait_wal(self, mark, label, n=1, timeout=10.0):
        """Waits until the stream has delivered n more committed transactions
        than at mark."""
        if not PROXY:
            return
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            got = int(st["replication_transactions"])
            if got >= mark + n:
                info(f"replication delivered {label} after {time.monotonic() - deadline + timeout:.3f}s")
                return
            if time.monotonic() > deadline:
                self.check(f"{label}.wal", False,
                           f"replication delivered {got - mark} of {n} transactions in {timeout}s: {st!r}")
                return
            time.sleep(0.005)

    def finish(self):
        """Final checks on the proxy's counters; returns the exit status."""
        if PROXY:
            end = self.stats()
            hits = int(end["hits"]) - int(self.start["hits"])
            self.check("stats.hits", hits >= self.hits_expected,
                       f"hits counted by SHOW pgmemo.stats during the run: {hits}, hit checks passed: {self.hits_expected}")
            fills = int(end["fills"]) - int(self.start["fills"])
            self.check("stats.fills", fills > 0, f"fills during the run: {fills}")
            self.check("stats.serving", end.get("replication_serving") == "true",
                       f"replication_serving={end.get('replication_serving')}")
            info(f"{self.checks} checks, {self.failed} failed")
        self.close()
        return 0
