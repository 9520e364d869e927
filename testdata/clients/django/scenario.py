"""Django ORM client scenario (see ../README.md for the contract).

Debian's python3-django (3.2) over python3-psycopg2, run with /usr/bin/python3.
The shop app (shop/models.py, migrations in shop/migrations) is migrated
through the proxy together with django.contrib.contenttypes and auth, then
read and written with the ORM: filters, get, counts, aggregates, JSONField
lookups, select_related, prefetch_related, server-side iterators, raw SQL,
transaction.atomic (committed, rolled back, nested savepoints, select_for_update).

psycopg2 interpolates parameters on the client and sends simple Query
messages, so every distinct literal is its own cache entry: the hits come
from repeating the same queryset. Django runs in autocommit; atomic() makes
psycopg2 send BEGIN before the block's first statement and COMMIT/ROLLBACK at
its end, and a nested atomic() sends SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK
TO SAVEPOINT.

Repeated reads are checked to be hits (SHOW pgmemo.last), and the read right
after each write to be a miss that fills the cache, then a hit. With WAL
invalidation pgmemo invalidates a write made through it twice, at its commit
and again when the replication stream delivers it, and drops what was filled
in between: those read-after-write checks fail whenever the stream is slower
than Django's next query (settle() below keeps the rest of the scenario
independent of that timing).

`python3 scenario.py makemigrations shop` (or any other manage.py command)
runs Django's command line with the same settings; that is how the migration
files were generated.
"""
import datetime
import io
import os
import sys
import time
from decimal import Decimal

import django
from django.conf import settings

TARGET = os.environ.get("PGMEMO_TARGET", "direct")
PROXY = TARGET == "proxy"
UTC = datetime.timezone.utc


def database(**extra):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "USER": os.environ.get("PGUSER", ""),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "NAME": os.environ.get("PGDATABASE", ""),
        # The session starts in another time zone (a startup parameter), so
        # Django's connection setup has to send SET TIME ZONE 'UTC' (USE_TZ).
        "OPTIONS": {
            "sslmode": os.environ.get("PGSSLMODE", "disable"),
            "options": "-c TimeZone=Europe/Paris",
            "application_name": "pgmemo-django-scenario",
        },
        **extra,
    }


def configure():
    settings.configure(
        DEBUG=False,
        SECRET_KEY="pgmemo-client-scenario",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "shop"],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        # "default" and a second connection to the same database, as a
        # second process of the application would have.
        DATABASES={"default": database(), "second": database()},
        LOGGING_CONFIG=None,
    )
    django.setup()
    if os.environ.get("SCENARIO_SQL_LOG"):  # debugging aid: every statement on stderr
        import logging

        from django.db import connections

        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="sql %(message)s")
        for alias in connections:
            connections[alias].force_debug_cursor = True


# ---------------------------------------------------------------------------
# Output


def show(v):
    """A stable text for what Django decoded: type-revealing reprs, aware
    datetimes in UTC, dicts and lists as decoded from jsonb."""
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None or v.utcoffset() is None:
            raise AssertionError(f"naive datetime from the ORM with USE_TZ=True: {v!r}")
        return "datetime(" + v.astimezone(UTC).isoformat() + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + ", ".join(show(x) for x in v) + ")"
    return repr(v)


def result(label, value):
    print(f"result {label} {value if isinstance(value, str) else show(value)}", flush=True)


def last(alias="default"):
    """How pgmemo served the connection's previous statement: (result, reason)."""
    from django.db import connections

    with connections[alias].cursor() as c:
        c.execute("SHOW pgmemo.last")
        row = c.fetchone()
    return row[0], row[1]


FAILED = []


def check(label, want, alias="default"):
    """Proxy run only: the previous statement on alias was served as one of want
    (an outcome like 'hit', or '!hit' for anything but a hit)."""
    if not PROXY:
        return
    want = [want] if isinstance(want, str) else list(want)
    outcome, reason = last(alias)
    ok = any(outcome != w[1:] if w.startswith("!") else outcome == w for w in want)
    if not ok:
        FAILED.append(label)
        diagnose(label, alias)
    print(f"check {label} {'ok' if ok else 'FAIL'} {outcome} reason={reason or '-'} want={'|'.join(want)}", flush=True)


def diagnose(label, alias):
    """On stderr, for a failed check: how often pgmemo invalidated each relation
    of the database, and where its replication stream is."""
    from django.db import connections

    db = os.environ["PGDATABASE"]
    with connections[alias].cursor() as c:
        c.execute("SHOW pgmemo.tables")
        cols = [d[0] for d in c.description]
        rows = [dict(zip(cols, r)) for r in c.fetchall()]
        tables = ", ".join(f"{r['relation']}={r['invalidations']}@{r['last_invalidation']}" for r in rows if r["database"] == db)
        c.execute("SHOW pgmemo.replication")
        cols = [d[0] for d in c.description]
        rep = next((dict(zip(cols, r)) for r in c.fetchall() if r[0] == db), {})
    print(f"diagnosis of {label}: at {datetime.datetime.now(UTC).isoformat()} invalidations {tables}; stream "
          + " ".join(f"{k}={rep.get(k)}" for k in ("serving", "staleness_ms", "received_lsn", "server_lsn", "transactions", "invalidations",
                                     "delay_p50_ms", "delay_p99_ms", "delay_max_ms", "reconnects")),
          file=sys.stderr, flush=True)


def twice(label, run, first="miss-filled", alias="default"):
    """Runs a read twice: the first is a miss that fills, the repeat a hit; both
    print what they read, which must be the same."""
    a = run()
    check(label + ".first", first, alias)
    result(label, a)
    b = run()
    check(label + ".repeat", "hit", alias)
    if show(a) != show(b):
        raise AssertionError(f"{label}: the repeated read differs: {show(a)} then {show(b)}")
    return a


def twice_after_write(label, run, alias="default"):
    """twice() for a read right after a write through pgmemo. pgmemo invalidates
    the write when it commits and again when its replication stream delivers
    the same commit (it cannot tell its own transactions in the stream), so an
    entry filled in between is dropped: the first read is miss-filled, or
    miss-not-filled if the stream's invalidation came while it ran. Once the
    stream has caught up (settle), a read fills for good (or hits, if the first
    fill came after the stream) and the next one is a hit."""
    a = run()
    check(label + ".first", ("miss-filled", "miss-not-filled"), alias)
    result(label, a)
    settle()
    run()
    check(label + ".settled", ("miss-filled", "hit"), alias)
    b = run()
    check(label + ".repeat", "hit", alias)
    if show(a) != show(b):
        raise AssertionError(f"{label}: the repeated read differs: {show(a)} then {show(b)}")
    return a


def lsn(text):
    hi, lo = text.split("/")
    return int(hi, 16) << 32 | int(lo, 16)


def settle():
    """Proxy run: waits until pgmemo's replication stream has delivered every
    commit made so far (received_lsn of SHOW pgmemo.replication has reached the
    server's WAL flush position). pgmemo invalidates a write made through it
    when it commits, and again when the stream delivers the same commit; an
    entry filled between the two is dropped. Settling after a write makes the
    hits that follow independent of that timing; the reads right after each
    write are checked before settling."""
    if not PROXY:
        return
    from django.db import connection

    db = os.environ["PGDATABASE"]
    with connection.cursor() as c:
        c.execute("SELECT pg_current_wal_flush_lsn()::text")
        want = lsn(c.fetchone()[0])
        deadline = time.monotonic() + 10
        while True:
            c.execute("SHOW pgmemo.replication")
            cols = [d[0] for d in c.description]
            row = next(dict(zip(cols, r)) for r in c.fetchall() if r[0] == db)
            if row["received_lsn"] and lsn(row["received_lsn"]) >= want:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the replication stream did not reach {want:X} within 10s: {row}")
            time.sleep(0.005)


def ts(*args, tz=UTC):
    return datetime.datetime(*args, tzinfo=tz)


# ---------------------------------------------------------------------------
# The scenario


def main():
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from django.db import IntegrityError, connection, connections, transaction
    from django.db.migrations.recorder import MigrationRecorder
    from django.db.models import Avg, Count, DecimalField, Exists, ExpressionWrapper, F, Max, Min, OuterRef, Q, Sum
    from django.db.models.functions import Now, TruncMonth
    from django.test.utils import CaptureQueriesContext

    from shop.models import Category, Order, OrderLine, Product

    # --- connection setup -------------------------------------------------
    connection.ensure_connection()
    result("django.version", django.get_version())
    result("connection.timezone", connection.connection.get_parameter_status("TimeZone"))
    with connection.cursor() as c:
        c.execute("SHOW TimeZone")
        result("show.timezone", c.fetchone()[0])

    # --- migrations through the proxy ------------------------------------
    out = io.StringIO()
    call_command("migrate", interactive=False, verbosity=1, stdout=out, stderr=out)
    for line in out.getvalue().splitlines():
        if line.strip():
            result("migrate.output", line.strip())
    applied = sorted(MigrationRecorder(connection).applied_migrations())
    result("migrate.applied", [f"{app}.{name}" for app, name in applied])
    out = io.StringIO()
    call_command("migrate", interactive=False, verbosity=1, stdout=out)
    result("migrate.again", out.getvalue().strip().splitlines()[-1].strip())
    tables = sorted(t for t in connection.introspection.table_names() if t.startswith(("shop_", "django_", "auth_")))
    result("tables", tables)
    with connection.cursor() as c:
        desc = connection.introspection.get_table_description(c, "shop_product")
    result("shop_product.columns", [(d.name, d.type_code, d.null_ok) for d in desc])
    with connection.cursor() as c:
        cons = connection.introspection.get_constraints(c, "shop_orderline")
    result("shop_orderline.constraints", sorted(
        (tuple(v["columns"]), "pk" if v["primary_key"] else "unique" if v["unique"] else "fk" if v["foreign_key"]
         else "check" if v["check"] else "index")
        for v in cons.values() if v["columns"]))
    # What the migrations themselves wrote (contenttypes, auth, the seed).
    settle()
    twice("contenttypes.shop", lambda: list(
        ContentType.objects.filter(app_label="shop").order_by("model").values_list("app_label", "model")))
    twice("permissions.shop.count", lambda: Permission.objects.filter(content_type__app_label="shop").count())
    twice("categories.seeded", lambda: list(Category.objects.values_list("name", "slug")))

    # --- writes: create, bulk_create ----------------------------------------
    books = Category.objects.get(slug="books")
    check("get.category.first", "miss-filled")
    garden = Category.objects.get(slug="garden")
    tools = Category.objects.get(slug="tools")
    again = Category.objects.get(slug="books")
    check("get.category.repeat", "hit")
    result("get.category", (again.pk == books.pk, again.name, again.slug))

    paris = datetime.timezone(datetime.timedelta(hours=1))
    Product.objects.create(
        category=books, name="Dune", sku="BK-001", price=Decimal("9.99"), stock=12,
        attrs={"author": "Frank Herbert", "pages": 412, "tags": ["sf", "classic"]},
        created_at=ts(2024, 1, 15, 10, 30))
    Product.objects.create(
        category=books, name="Hyperion", sku="BK-002", price=Decimal("12.50"), stock=0, active=False,
        attrs={"author": "Dan Simmons", "pages": 482, "series": {"name": "Cantos", "no": 1}},
        created_at=ts(2024, 1, 31, 23, 0))
    Product.objects.create(
        category=books, name="Zürich – a guide", sku="BK-003", price=Decimal("18.00"), stock=3,
        attrs={"lang": "de", "pages": 190, "maps": True, "isbn": None},
        created_at=ts(2024, 2, 1, 0, 30, tz=paris))  # 2024-01-31 23:30 UTC
    Product.objects.bulk_create([
        Product(category=garden, name="Trowel", sku="GD-001", price=Decimal("7.25"), stock=40,
                attrs={"material": "steel", "color": "green"}, created_at=ts(2024, 3, 1, 8, 0, tz=paris)),
        Product(category=garden, name="Hose 25m", sku="GD-002", price=Decimal("34.90"), stock=5,
                attrs={"length_m": 25, "color": "green"}, created_at=ts(2024, 3, 2, 9, 15)),
        Product(category=tools, name="Hammer", sku="TL-001", price=Decimal("15.00"), stock=8,
                attrs={"weight_kg": 0.6}, created_at=ts(2024, 6, 30, 23, 59, 59, 123456)),
        Product(category=tools, name="Screwdriver set", sku="TL-002", price=Decimal("22.40"), stock=0,
                attrs={"pieces": 6, "color": "red", "sizes": [1.5, 2, 3]}, created_at=ts(2024, 7, 1, 0, 0)),
    ])
    alice = Order.objects.create(customer="alice", placed_at=ts(2024, 8, 1, 12, 0), paid=True, note="gift wrap")
    bob = Order.objects.create(customer="bob", placed_at=ts(2024, 8, 2, 18, 45, 30))
    by_sku = {p.sku: p for p in Product.objects.all()}
    OrderLine.objects.bulk_create([
        OrderLine(order=alice, product=by_sku["BK-001"], quantity=2, unit_price=Decimal("9.99")),
        OrderLine(order=alice, product=by_sku["TL-001"], quantity=1, unit_price=Decimal("15.00")),
        OrderLine(order=bob, product=by_sku["GD-001"], quantity=3, unit_price=Decimal("7.00")),
    ])

    # --- reads ----------------------------------------------------------------
    settle()
    def active_products():
        return [(p.sku, p.name, p.price, p.stock, p.active, p.attrs, p.created_at)
                for p in Product.objects.filter(active=True).order_by("sku")]

    twice("products.active", active_products)
    twice("products.get", lambda: (lambda p: (p.sku, p.name, p.price, p.attrs, p.created_at))(
        Product.objects.get(sku="BK-003")))
    twice("products.garden.count", lambda: Product.objects.filter(category__slug="garden").count())
    twice("products.aggregate", lambda: sorted(Product.objects.aggregate(
        n=Count("id"), total=Sum("price"), avg=Avg("price"), cheapest=Min("price"),
        newest=Max("created_at"), stock=Sum("stock")).items()))
    twice("products.exists.out_of_stock", lambda: Product.objects.filter(stock=0).exists())
    twice("products.first", lambda: Product.objects.order_by("-price").values_list("sku", "price").first())
    twice("products.values_list.flat", lambda: list(
        Product.objects.filter(Q(price__lt=10) | Q(stock__gte=40)).order_by("sku").values_list("sku", flat=True)))
    twice("products.created_range", lambda: list(Product.objects.filter(
        created_at__gte=ts(2024, 1, 31, 23, 0), created_at__lt=ts(2024, 3, 2, 9, 15)).order_by("created_at")
        .values_list("sku", "created_at")))
    twice("products.created_year", lambda: Product.objects.filter(created_at__year=2024, created_at__month=1).count())

    # JSONField: key transforms, has_key (?), contains (@>), nested keys.
    twice("json.color_green", lambda: list(
        Product.objects.filter(attrs__color="green").order_by("sku").values_list("sku", "attrs")))
    twice("json.has_key", lambda: list(
        Product.objects.filter(attrs__has_key="author").order_by("sku").values_list("sku", flat=True)))
    twice("json.pages_gt", lambda: list(
        Product.objects.filter(attrs__pages__gt=400).order_by("sku").values_list("sku", "attrs__pages")))
    twice("json.contains", lambda: list(
        Product.objects.filter(attrs__contains={"color": "green", "material": "steel"}).values_list("sku", flat=True)))
    twice("json.nested", lambda: list(
        Product.objects.filter(attrs__series__name="Cantos").values_list("sku", "attrs__series")))
    twice("json.isnull_value", lambda: list(
        Product.objects.filter(attrs__isbn=None).values_list("sku", flat=True)))

    # Annotations, GROUP BY, time zone aware truncation, subqueries.
    value = ExpressionWrapper(F("products__price") * F("products__stock"), output_field=DecimalField())
    twice("categories.annotate", lambda: list(
        Category.objects.annotate(n=Count("products"), value=Sum(value)).order_by("name")
        .values_list("name", "n", "value")))
    twice("products.by_month", lambda: list(
        Product.objects.annotate(month=TruncMonth("created_at")).values("month").annotate(n=Count("id"))
        .order_by("month").values_list("month", "n")))
    twice("categories.with_out_of_stock", lambda: list(
        Category.objects.filter(Exists(Product.objects.filter(category=OuterRef("pk"), stock=0)))
        .values_list("slug", flat=True)))
    twice("products.raw", lambda: [(p.sku, p.price) for p in Product.objects.raw(
        "SELECT id, sku, price FROM shop_product WHERE price > %s ORDER BY sku", [Decimal("15.00")])])

    # select_related: one query with JOINs; prefetch_related: two queries.
    def lines_joined():
        with CaptureQueriesContext(connection) as q:
            rows = [(l.order.customer, l.order.paid, l.order.placed_at, l.product.sku, l.product.category.name,
                     l.quantity, l.unit_price)
                    for l in OrderLine.objects.select_related("order", "product__category")
                    .order_by("order__customer", "product__sku")]
        return rows, len(q.captured_queries)

    twice("select_related.lines", lines_joined)

    def categories_prefetched():
        with CaptureQueriesContext(connection) as q:
            rows = [(c.slug, [p.sku for p in c.products.all()])
                    for c in Category.objects.prefetch_related("products").order_by("slug")]
        return rows, len(q.captured_queries)

    twice("prefetch_related.categories", categories_prefetched)

    # The second connection shares the entries the first filled.
    result("second.products.active", [(p.sku, p.price) for p in Product.objects.using("second").filter(active=True).order_by("sku")])
    check("second.products.active.shared", "hit", "second")  # the entry the default connection filled
    twice("second.products.garden.count", lambda: Product.objects.using("second").filter(category__slug="garden").count(),
          first="hit", alias="second")

    # Entries are keyed by the session's settings. A plain psycopg2 session with
    # the same startup parameters, left in its startup time zone (Europe/Paris),
    # sends the very text Django sent and must get its own rendering of the
    # timestamptz values; after the SET TIME ZONE 'UTC' Django sends at
    # connect, it shares Django's entry.
    import psycopg2

    qs = Product.objects.filter(created_at__gte=ts(2024, 1, 31, 23, 0), created_at__lt=ts(2024, 3, 2, 9, 15)) \
        .order_by("created_at").values_list("sku", "created_at")
    sql, params = qs.query.sql_with_params()
    s = connection.settings_dict
    raw = psycopg2.connect(dbname=s["NAME"], user=s["USER"], password=s["PASSWORD"], host=s["HOST"], port=s["PORT"],
                           **s["OPTIONS"])
    raw.autocommit = True
    try:
        with raw.cursor() as c:
            c.execute(sql, params)
            rows = [(sku, at.isoformat()) for sku, at in c.fetchall()]
            result("psycopg2.paris", rows)
            if PROXY:
                c.execute("SHOW pgmemo.last")
                outcome, reason = c.fetchone()[:2]
                print(f"check psycopg2.paris.own_entry {'ok' if outcome == 'miss-filled' else 'FAIL'} {outcome} reason={reason or '-'} want=miss-filled")
            c.execute("SET TIME ZONE 'UTC'")
            c.execute(sql, params)
            rows = [(sku, at.isoformat()) for sku, at in c.fetchall()]
            result("psycopg2.utc", rows)
            if PROXY:
                c.execute("SHOW pgmemo.last")
                outcome, reason = c.fetchone()[:2]
                print(f"check psycopg2.utc.shared {'ok' if outcome == 'hit' else 'FAIL'} {outcome} reason={reason or '-'} want=hit")
    finally:
        raw.close()

    # Server-side cursor (DECLARE ... WITH HOLD / FETCH / CLOSE): never a hit.
    result("iterator.skus", [p.sku for p in Product.objects.order_by("sku").iterator(chunk_size=3)])
    check("iterator.not_hit", "!hit")

    # A read that depends on the time of day is never cached.
    for _ in range(2):
        n = Product.objects.filter(created_at__lt=Now()).count()
        check("now.not_cacheable", "miss-not-cacheable")
    result("now.count", n)

    # --- writes are visible to the next read ------------------------------------
    n = Product.objects.filter(sku="BK-002").update(stock=F("stock") + 5, active=True)
    result("update.rows", n)
    twice_after_write("products.active.after_update", active_products)
    settle()

    # A write, the read that follows it (the new value), the replication stream
    # catching up (it invalidates the write a second time: see
    # twice_after_write), and the same read again: a fill, then hits.
    Product.objects.filter(sku="GD-001").update(stock=F("stock") - 1)
    a = Product.objects.filter(sku="GD-001").values_list("sku", "stock").get()
    check("own_write.read", ("miss-filled", "miss-not-filled"))
    settle()
    b = Product.objects.filter(sku="GD-001").values_list("sku", "stock").get()
    check("own_write.read_after_stream", ("miss-filled", "hit"))
    b = Product.objects.filter(sku="GD-001").values_list("sku", "stock").get()
    check("own_write.read_again", "hit")
    result("own_write", (a, b))

    p = Product.objects.get(sku="TL-001")
    p.price = Decimal("13.75")
    p.attrs["weight_kg"] = 0.65
    p.attrs["handle"] = "ash"
    p.save()
    twice_after_write("products.get.after_save", lambda: (lambda p: (p.sku, p.price, p.attrs, p.created_at))(
        Product.objects.get(sku="TL-001")))
    settle()

    deleted = Product.objects.filter(sku="GD-002").delete()
    result("delete", deleted)
    twice_after_write("products.garden.count.after_delete", lambda: Product.objects.filter(category__slug="garden").count())
    settle()
    twice("products.aggregate.after_writes", lambda: sorted(Product.objects.aggregate(
        n=Count("id"), total=Sum("price"), avg=Avg("price"), cheapest=Min("price"),
        newest=Max("created_at"), stock=Sum("stock")).items()))

    # get_or_create: the get misses, the row is created (in a transaction), and
    # the same get, repeated, sees it.
    kitchen, created = Category.objects.get_or_create(slug="kitchen", defaults={"name": "Kitchen"})
    result("get_or_create.first", (kitchen.name, created))
    kitchen, created = Category.objects.get_or_create(slug="kitchen", defaults={"name": "Kitchen"})
    check("get_or_create.second", ("miss-filled", "miss-not-filled"))
    result("get_or_create.second", (kitchen.name, created))
    settle()
    twice("categories.after_create", lambda: list(Category.objects.values_list("name", "slug")))

    # --- transactions -------------------------------------------------------------
    def orders():
        return [(o.customer, o.paid, o.placed_at, o.note, [(l.product.sku, l.quantity) for l in o.lines.select_related("product").order_by("quantity")])
                for o in Order.objects.order_by("customer")]

    def order_count():
        return Order.objects.count()

    twice("orders", orders)
    twice("orders.count", order_count)

    # A committed block: reads before its first write may be hits, reads
    # after it go to the server; after COMMIT the write is visible.
    committed = []
    with transaction.atomic():
        n = order_count()
        check("atomic.read_before_write", "hit")
        result("atomic.read_before_write", n)
        carol = Order.objects.create(customer="carol", placed_at=ts(2024, 8, 3, 9, 0), note="ring twice")
        OrderLine.objects.create(order=carol, product=by_sku["BK-003"], quantity=1, unit_price=Decimal("18.00"))
        n = order_count()
        check("atomic.read_after_write", "!hit")
        result("atomic.read_after_write", n)
        transaction.on_commit(lambda: committed.append("carol"))
    result("atomic.on_commit", committed)
    twice_after_write("orders.count.after_commit", order_count)
    settle()
    twice("orders.count.settled", order_count, first=("miss-filled", "hit"))

    # A block that raises: ROLLBACK; nothing is written, and since a rolled-back
    # write invalidates nothing, the entry filled above is still served.
    try:
        with transaction.atomic():
            n = order_count()
            check("atomic.rollback.read_before_write", "hit")
            Order.objects.create(customer="mallory", placed_at=ts(2024, 8, 4, 0, 0))
            Product.objects.filter(sku="BK-001").update(stock=0)
            result("atomic.rollback.inside", (order_count(), Product.objects.get(sku="BK-001").stock))
            raise RuntimeError("abandon the order")
    except RuntimeError as e:
        result("atomic.rollback.raised", str(e))
    n = order_count()
    check("atomic.rollback.read_after", "hit")
    result("atomic.rollback.read_after", n)
    twice("products.get.after_rollback", lambda: Product.objects.filter(sku="BK-001").values_list("sku", "stock").get())

    # Nested blocks: savepoints. The first inner block commits its line
    # (RELEASE SAVEPOINT), the second violates the unique constraint and is
    # rolled back to its savepoint, the outer block commits.
    with transaction.atomic():
        n = order_count()
        check("savepoint.outer.read_before_write", "hit")
        with transaction.atomic():
            m = list(Category.objects.values_list("name", "slug"))
            check("savepoint.inner.read_before_write", "hit")
            dave = Order.objects.create(customer="dave", placed_at=ts(2024, 8, 5, 14, 20), paid=True)
            OrderLine.objects.create(order=dave, product=by_sku["GD-001"], quantity=4, unit_price=Decimal("7.25"))
        try:
            with transaction.atomic():
                OrderLine.objects.create(order=dave, product=by_sku["GD-001"], quantity=1, unit_price=Decimal("7.25"))
        except IntegrityError as e:
            result("savepoint.integrity_error", type(e.__cause__).__name__)
        lines = list(OrderLine.objects.filter(order=dave).values_list("quantity", "unit_price"))
        check("savepoint.read_after_rollback_to", "!hit")
        result("savepoint.lines_inside", (n, m, lines))
        with transaction.atomic():
            Order.objects.filter(pk=dave.pk).update(note="left at the door")
    twice_after_write("orders.after_savepoints", orders)
    settle()

    # SELECT ... FOR UPDATE takes a lock: it goes to the server.
    with transaction.atomic():
        p = Product.objects.select_for_update().get(sku="BK-001")
        check("select_for_update", "miss-not-cacheable")
        p.stock -= 2
        p.save(update_fields=["stock"])
    twice_after_write("products.get.after_for_update", lambda: Product.objects.filter(sku="BK-001").values_list("sku", "stock").get())
    settle()

    # A REPEATABLE READ block reads from the server, even what is cached.
    with transaction.atomic():
        with connection.cursor() as c:
            c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        n = order_count()
        check("repeatable_read.bypass", "bypass")
        result("repeatable_read.orders", n)

    # A write through the second connection is seen by the first at once.
    Order.objects.using("second").filter(customer="bob").update(paid=True)
    twice_after_write("orders.after_second_write", orders)
    settle()
    twice("orders.count.second", lambda: Order.objects.using("second").count(), alias="second")

    # Deleting an order deletes its lines (Django collects and deletes them, the
    # foreign key itself has no ON DELETE action).
    result("delete.order", Order.objects.filter(customer="alice").delete())
    twice("orderlines.after_delete", lambda: list(
        OrderLine.objects.order_by("order__customer", "quantity").values_list("order__customer", "product__sku", "quantity")))

    connections.close_all()
    if FAILED:  # the test reports each failed check line
        print(f"failed checks: {', '.join(FAILED)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    configure()
    if len(sys.argv) > 1:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
        sys.exit(0)
    sys.exit(main())
