"""SQLAlchemy (Core and ORM, over psycopg2) through pgmemo (see ../README.md).

Debian bookworm ships SQLAlchemy 1.4; the scenario uses the 2.0-style API that
1.4 provides (create_engine(future=True), select(), Connection.commit(),
Session.execute/scalars/get) and must print no deprecation warning.

SQLAlchemy opens a transaction for every Connection and Session (psycopg2's
BEGIN before the first statement) and ends it with commit() or rollback()
(also when the connection goes back to the pool), so reads are in
READ COMMITTED blocks, which pgmemo serves from the cache until the block's
first write. Covered: Core select() on a Table with parameters, IN lists,
jsonb and array operators, LIMIT/OFFSET, text(); executemany of insert() and
update(); commit and rollback; INSERT ... RETURNING; AUTOCOMMIT and
REPEATABLE READ connections; reads after Connection.get_isolation_level()
(a SHOW) in a block; ORM declarative models with a relationship,
Session queries, lazy and selectin loading, Session.get and the identity
map, a write (update an object, commit) read back in a new session.

Run with Debian's /usr/bin/python3 (python3-sqlalchemy, python3-psycopg2).
"""

import datetime
import sys
from decimal import Decimal

import psycopg2.extensions as ext
from sqlalchemy import (Boolean, Column, DateTime, ForeignKey, Integer, LargeBinary, MetaData, Numeric, String,
                        Table, Text, bindparam, create_engine, delete, func, insert, select, text, update)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session, declarative_base, relationship, selectinload
import sqlalchemy

print("client sqlalchemy", sqlalchemy.__version__, "from", sqlalchemy.__file__, flush=True)

from scenario_common import DATABASE_URL, HIT, Proxy, result, rows_repr

proxy = Proxy()

URL = "postgresql+psycopg2://" + DATABASE_URL.split("://", 1)[1]
# The session time zone as a startup parameter (the psycopg2 scenario uses SET).
engine = create_engine(URL, future=True, connect_args={"options": "-c TimeZone=UTC"})
UTC = datetime.timezone.utc


def shower(conn):
    """query(sql) -> list of dicts on a Core Connection, for SHOW pgmemo.last.
    Refuses when no transaction is open on a non-autocommit connection, where
    psycopg2 would send BEGIN first and SHOW pgmemo.last would describe it."""

    def query(sql):
        dbapi = conn.connection.dbapi_connection
        if not dbapi.autocommit and dbapi.info.transaction_status == ext.TRANSACTION_STATUS_IDLE:
            raise AssertionError(f"{sql} would follow psycopg2's implicit BEGIN")
        return [dict(m) for m in conn.exec_driver_sql(sql).mappings()]

    return query


def session_shower(session):
    """The same on the connection of a Session's current transaction."""

    def query(sql):
        if not session.in_transaction():
            raise AssertionError(f"{sql} outside the session's transaction")
        return shower(session.connection())(sql)

    return query


def read(conn, label, stmt, params=None):
    rows = conn.execute(stmt, params).all() if params is not None else conn.execute(stmt).all()
    result(label, rows_repr(rows))
    return rows


# ---------------------------------------------------------------- schema
metadata = MetaData()

products = Table(
    "products", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("price", Numeric(10, 2)),
    Column("stock", Integer, nullable=False, server_default="0"),
    Column("added", DateTime(timezone=True)),
    Column("active", Boolean),
    Column("image", LargeBinary),
    Column("attrs", JSONB),
    Column("tags", ARRAY(Text)),
    Column("note", Text),
)

Base = declarative_base(metadata=metadata)


class Customer(Base):
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    name = Column(String(100), nullable=False)
    email = Column(String(200), nullable=False, unique=True)
    balance = Column(Numeric(12, 2), nullable=False, default=Decimal("0"))
    joined = Column(DateTime(timezone=True))
    profile = Column(JSONB)
    orders = relationship("Order", back_populates="customer", order_by="Order.id")

    def __repr__(self):
        return (f"Customer(id={self.id!r}, name={self.name!r}, email={self.email!r}, balance={self.balance!r}, "
                f"joined={self.joined!r}, profile={self.profile!r})")


class Order(Base):
    __tablename__ = "orders"
    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id"), nullable=False)
    total = Column(Numeric(10, 2), nullable=False)
    status = Column(String(20), nullable=False)
    placed = Column(DateTime(timezone=True))
    customer = relationship("Customer", back_populates="orders")

    def __repr__(self):
        return f"Order(id={self.id!r}, customer_id={self.customer_id!r}, total={self.total!r}, status={self.status!r})"


with engine.begin() as conn:
    metadata.create_all(conn)
result("schema.tables", sorted(metadata.tables))

# ---------------------------------------------------------------- Core: executemany insert
# A list of parameter sets: psycopg2's execute_values, one INSERT with many rows.
mark = proxy.wal_mark()
with engine.begin() as conn:
    r = conn.execute(insert(products), [
        dict(id=1, name="Widget", price=Decimal("9.99"), stock=5, active=True,
             added=datetime.datetime(2024, 3, 1, 12, 0, 0, 250000, tzinfo=UTC), image=b"\x89PNG\x00\xff",
             attrs={"color": "red", "dims": [1, 2.5]}, tags=["sale", "new"], note=None),
        dict(id=2, name="Gadget \"pro\"", price=Decimal("129.00"), stock=0, active=False,
             added=datetime.datetime(2023, 7, 14, 23, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
             image=b"", attrs={"color": "blue", "spec": {"v": None}}, tags=[], note="it's \u00fcber"),
        dict(id=3, name="Doohickey", price=None, stock=12, active=None, added=None, image=None, attrs=None,
             tags=None, note="third"),
        dict(id=4, name="Whatsit", price=Decimal("0.50"), stock=100, active=True,
             added=datetime.datetime(2024, 2, 29, 0, 0, tzinfo=UTC), image=b"abc", attrs={"color": "red"},
             tags=["sale"], note=None),
        dict(id=5, name="Wombat 100%", price=Decimal("5.00"), stock=1, active=True,
             added=datetime.datetime(2022, 1, 1, tzinfo=UTC), image=b"\x00", attrs={}, tags=["a,b", "{c}"],
             note="percent % and colon :x"),
    ])
    result("core.insert.rowcount", r.rowcount)
proxy.wait_wal(mark, "core.insert")

# ---------------------------------------------------------------- Core: reads
BY_ID = select(products).where(products.c.id == 1)
PRICED = select(products.c.id, products.c.name, products.c.price).where(products.c.price > Decimal("5")) \
    .order_by(products.c.id)
IN_LIST = select(products.c.id, products.c.stock).where(products.c.id.in_([1, 3, 5])).order_by(products.c.id)
RED = select(products.c.id, products.c.attrs["dims"]).where(products.c.attrs["color"].astext == "red") \
    .order_by(products.c.id)
ON_SALE = select(products.c.id, products.c.tags).where(products.c.tags.contains(["sale"])).order_by(products.c.id)
PAGE = select(products.c.id, products.c.name).order_by(products.c.id).limit(2).offset(1)
TOTALS = select(func.count(), func.sum(products.c.price), func.max(products.c.added), func.sum(products.c.stock))
LIKE = text("SELECT id, name, note FROM products WHERE name LIKE :pat ORDER BY id")

with engine.connect() as conn:
    last = shower(conn)
    result("core.sql.by-id", str(BY_ID.compile(engine)).replace("\n", " "))
    read(conn, "core.by-id", BY_ID)
    proxy.expect(last, "core.by-id.first", "miss-filled")
    read(conn, "core.by-id", BY_ID)
    proxy.expect(last, "core.by-id.repeat", HIT)
    for label, stmt in (("priced", PRICED), ("in-list", IN_LIST), ("jsonb", RED), ("array", ON_SALE),
                        ("limit-offset", PAGE), ("totals", TOTALS)):
        read(conn, f"core.{label}", stmt)
        proxy.expect(last, f"core.{label}.first", "miss-filled")
        read(conn, f"core.{label}", stmt)
        proxy.expect(last, f"core.{label}.repeat", HIT)
    read(conn, "core.text", LIKE, {"pat": "W%"})
    proxy.expect(last, "core.text.first", "miss-filled")
    read(conn, "core.text", LIKE, {"pat": "W%"})
    proxy.expect(last, "core.text.repeat", HIT)
    read(conn, "core.text.other-value", LIKE, {"pat": "%100\\%%"})
    proxy.expect(last, "core.text.other-value", "miss-filled")
    result("core.scalar", repr(conn.scalar(select(func.count()).select_from(products).where(products.c.active))))
    conn.scalar(select(func.count()).select_from(products).where(products.c.active))
    proxy.expect(last, "core.scalar.repeat", HIT)
    m = conn.execute(select(products).where(products.c.id == 2)).mappings().one()
    result("core.mapping", repr({k: m[k] for k in sorted(m.keys())}))
    result("core.types", repr([type(v).__name__ for v in conn.execute(BY_ID).one()]))
    proxy.expect(last, "core.types", HIT)

# A new Connection (a new transaction, maybe another DBAPI connection): hits.
with engine.connect() as conn:
    last = shower(conn)
    read(conn, "core.by-id", BY_ID)
    proxy.expect(last, "core.by-id.new-connection", HIT)
    read(conn, "core.limit-offset", PAGE)
    proxy.expect(last, "core.limit-offset.new-connection", HIT)

# ---------------------------------------------------------------- Core: executemany update, commit
REPRICE = update(products).where(products.c.id == bindparam("b_id")) \
    .values(price=bindparam("b_price"), stock=products.c.stock + 1)
with engine.connect() as conn:
    last = shower(conn)
    read(conn, "core.commit.before", BY_ID)
    proxy.expect(last, "core.commit.before", HIT)
    r = conn.execute(REPRICE, [{"b_id": 1, "b_price": Decimal("11.50")}, {"b_id": 4, "b_price": Decimal("0.75")},
                               {"b_id": 99, "b_price": Decimal("1")}])
    result("core.update.rowcount", r.rowcount)
    read(conn, "core.commit.in-transaction", BY_ID)
    proxy.expect(last, "core.commit.in-transaction", "bypass", reason="transaction")
    mark = proxy.wal_mark()
    conn.commit()
    proxy.wait_wal(mark, "core.commit")
    read(conn, "core.commit.after", BY_ID)
    proxy.expect(last, "core.commit.after", "miss-filled")
    read(conn, "core.commit.after", BY_ID)
    proxy.expect(last, "core.commit.after.repeat", HIT)
    read(conn, "core.commit.totals", TOTALS)
    proxy.expect(last, "core.commit.totals", "miss-filled")
    conn.commit()

# ---------------------------------------------------------------- Core: rollback
with engine.connect() as conn:
    last = shower(conn)
    read(conn, "core.rollback.before", BY_ID)
    proxy.expect(last, "core.rollback.before", HIT)
    conn.execute(update(products).where(products.c.id == 1).values(name="never committed", stock=-1))
    read(conn, "core.rollback.in-transaction", BY_ID)
    proxy.expect(last, "core.rollback.in-transaction", "bypass", reason="transaction")
    conn.rollback()
    read(conn, "core.rollback.after", BY_ID)
    proxy.expect(last, "core.rollback.after", HIT)
    conn.rollback()

# ---------------------------------------------------------------- Core: RETURNING, delete
mark = proxy.wal_mark()
with engine.begin() as conn:
    r = conn.execute(insert(products).values(id=6, name="Temp", price=Decimal("1.00"))
                     .returning(products.c.id, products.c.name, products.c.stock))
    result("core.returning", rows_repr(r.all()))
    result("core.delete.rowcount", conn.execute(delete(products).where(products.c.id == 5)).rowcount)
proxy.wait_wal(mark, "core.returning")
with engine.connect() as conn:
    last = shower(conn)
    read(conn, "core.after-delete", IN_LIST)
    proxy.expect(last, "core.after-delete", "miss-filled")
    read(conn, "core.after-delete", IN_LIST)
    proxy.expect(last, "core.after-delete.repeat", HIT)
    read(conn, "core.after-delete.by-id", BY_ID)
    proxy.expect(last, "core.after-delete.by-id", "miss-filled")

# ---------------------------------------------------------------- AUTOCOMMIT and REPEATABLE READ
autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
with autocommit.connect() as conn:
    last = shower(conn)
    result("autocommit.dbapi-autocommit", conn.connection.dbapi_connection.autocommit)
    read(conn, "autocommit.by-id", BY_ID)
    proxy.expect(last, "autocommit.by-id.shared", HIT)  # filled in a transaction block just before
    mark = proxy.wal_mark()
    conn.execute(update(products).where(products.c.id == 1).values(stock=products.c.stock + 10))
    proxy.wait_wal(mark, "autocommit.update")
    read(conn, "autocommit.after-write", BY_ID)
    proxy.expect(last, "autocommit.after-write", "miss-filled")
    read(conn, "autocommit.after-write", BY_ID)
    proxy.expect(last, "autocommit.after-write.repeat", HIT)

# The AUTOCOMMIT connection went back to the pool with its isolation level
# reset: the next transactions are READ COMMITTED blocks again.
with engine.connect() as conn:
    last = shower(conn)
    read(conn, "autocommit.after-reset", BY_ID)
    proxy.expect(last, "autocommit.after-reset", HIT)

# REPEATABLE READ blocks always read the server (their snapshot is its own).
with engine.execution_options(isolation_level="REPEATABLE READ").connect() as conn:
    last = shower(conn)
    read(conn, "repeatable-read.by-id", BY_ID)
    proxy.expect(last, "repeatable-read.by-id", "bypass", reason="transaction")
    read(conn, "repeatable-read.by-id", BY_ID)
    proxy.expect(last, "repeatable-read.by-id.repeat", "bypass", reason="transaction")
    result("repeatable-read.isolation", conn.get_isolation_level())

# Connection.get_isolation_level() runs SHOW transaction isolation level in
# the block: SHOW reads a setting and writes nothing, so the block's reads
# should still be served from the cache.
with engine.connect() as conn:
    last = shower(conn)
    read(conn, "show-in-block.before", BY_ID)
    proxy.expect(last, "show-in-block.before", HIT)
    result("show-in-block.isolation", conn.get_isolation_level())
    read(conn, "show-in-block.after", BY_ID)
    proxy.expect(last, "show-in-block.after", HIT)

# ---------------------------------------------------------------- ORM
mark = proxy.wal_mark()
with Session(engine, future=True) as s:
    ada = Customer(name="Ada", email="ada@example.com", balance=Decimal("100.00"),
                   joined=datetime.datetime(2020, 5, 17, 8, 30, tzinfo=UTC), profile={"tier": "gold", "tags": ["x"]})
    bob = Customer(name="Bob", email="bob@example.com", balance=Decimal("-3.25"), joined=None, profile=None)
    cyd = Customer(name="Cyd", email="cyd@example.com")
    ada.orders = [Order(total=Decimal("19.99"), status="paid"), Order(total=Decimal("5.00"), status="open",
                                                                       placed=datetime.datetime(2024, 1, 1, tzinfo=UTC))]
    bob.orders = [Order(total=Decimal("250.00"), status="paid")]
    s.add_all([ada, bob, cyd])
    s.commit()
    result("orm.ids", repr([ada.id, bob.id, cyd.id]))  # a reload after commit (expire_on_commit)
proxy.wait_wal(mark, "orm.insert")

BY_NAME = select(Customer).where(Customer.name == "Ada")
BY_BALANCE = select(Customer).where(Customer.balance > Decimal("0")).order_by(Customer.id)
STATUS = select(Order.status, func.count(), func.sum(Order.total)).group_by(Order.status).order_by(Order.status)

for attempt, want in (("first", "miss-filled"), ("again", HIT)):
    with Session(engine, future=True) as s:
        last = session_shower(s)
        ada = s.scalars(BY_NAME).one()
        result("orm.query", repr(ada))
        proxy.expect(last, f"orm.query.{attempt}", want)
        result("orm.lazy-orders", repr(ada.orders))  # a lazy load: SELECT ... WHERE %(param_1)s = orders.customer_id
        proxy.expect(last, f"orm.lazy-orders.{attempt}", want)
        result("orm.identity-map", s.get(Customer, ada.id) is ada)  # no SQL: already in the session
        got = s.scalars(BY_BALANCE.options(selectinload(Customer.orders))).all()
        result("orm.selectin", repr([(c.name, [o.total for o in c.orders]) for c in got]))
        proxy.expect(last, f"orm.selectin.{attempt}", want)  # the second SELECT, of the orders
        result("orm.aggregate", rows_repr(s.execute(STATUS).all()))
        proxy.expect(last, f"orm.aggregate.{attempt}", want)

# The first get may already hit: an earlier session read customer 1 by its
# primary key with the same statement, and nothing wrote it since.
for attempt, want in (("first", ("miss-filled", HIT)), ("again", HIT)):
    with Session(engine, future=True) as s:
        last = session_shower(s)
        result("orm.get", repr(s.get(Customer, 1)))  # SELECT by primary key
        proxy.expect(last, f"orm.get.{attempt}", want)

# Update an object and commit; a new session reads the new value.
mark = proxy.wal_mark()
with Session(engine, future=True) as s:
    last = session_shower(s)
    ada = s.get(Customer, 1)
    proxy.expect(last, "orm.write.get", HIT)
    ada.balance = Decimal("250.75")
    ada.profile = {"tier": "platinum", "tags": ["x", "y"]}
    s.flush()  # UPDATE customers SET ... WHERE customers.id = ...
    result("orm.write.in-transaction", repr(s.execute(select(Customer.balance).where(Customer.id == 1)).scalar_one()))
    proxy.expect(last, "orm.write.in-transaction", "bypass", reason="transaction")
    s.commit()
proxy.wait_wal(mark, "orm.write")

with Session(engine, future=True) as s:
    last = session_shower(s)
    ada = s.get(Customer, 1)
    result("orm.write.new-session", repr(ada))
    proxy.expect(last, "orm.write.new-session", "miss-filled")
    result("orm.write.identity-map", s.get(Customer, 1) is ada)
    result("orm.write.query", repr(s.scalars(BY_NAME).one()))
    proxy.expect(last, "orm.write.query", "miss-filled")
with Session(engine, future=True) as s:
    last = session_shower(s)
    result("orm.write.new-session", repr(s.get(Customer, 1)))
    proxy.expect(last, "orm.write.new-session.repeat", HIT)

# Change an object, flush, roll back: the object is expired and reloaded with
# the committed values, which the cache still has.
with Session(engine, future=True) as s:
    last = session_shower(s)
    bob = s.get(Customer, 2)
    result("orm.rollback.before", repr(bob))
    proxy.expect(last, "orm.rollback.before", "miss-filled")
    bob.name = "Robert"
    s.flush()
    result("orm.rollback.identity-map", repr(s.get(Customer, 2).name))  # the session's own change, no SQL
    s.rollback()
    result("orm.rollback.after", repr(bob))  # attribute access after rollback: a refresh
    proxy.expect(last, "orm.rollback.after", HIT)

# A new order: the lazy load of the customer's orders sees it.
mark = proxy.wal_mark()
with Session(engine, future=True) as s:
    s.add(Order(customer_id=1, total=Decimal("1.25"), status="open"))
    s.commit()
proxy.wait_wal(mark, "orm.new-order")
with Session(engine, future=True) as s:
    last = session_shower(s)
    ada = s.scalars(BY_NAME).one()
    proxy.expect(last, "orm.new-order.query", HIT)  # customers did not change
    result("orm.new-order.lazy", repr(ada.orders))
    proxy.expect(last, "orm.new-order.lazy", "miss-filled")

engine.dispose()
sys.exit(proxy.finish())
