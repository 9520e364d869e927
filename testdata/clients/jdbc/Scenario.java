// PgJDBC client scenario for TestClientMatrix (see ../README.md for the contract).
//
// Run with Java 17 as a single-file source program:
//   java -cp /usr/share/java/postgresql.jar Scenario.java
//
// Environment: PGMEMO_TARGET (direct|proxy), JDBC_URL, PGUSER, PGPASSWORD.
// Optional, for debugging: JDBC_TRACE_DIR=/some/dir writes PgJDBC's FINEST log
// (every frontend/backend message) to /some/dir/jdbc-<target>.log and a copy
// of stdout to /some/dir/stdout-<target>.txt; none of the log goes to stdout
// or stderr.
//
// What it covers: a plain Statement, batch inserts (PreparedStatement and
// Statement batches), a PreparedStatement reused past prepareThreshold (the
// first executions use the unnamed statement and text results, later ones a
// named server-side statement S_n and binary results), parameters of several
// types, ResultSetMetaData without executing, transactions with commit and
// rollback, a setFetchSize cursor (a portal with a row limit, never served from
// the cache), DatabaseMetaData (catalog queries, not cacheable), a
// preferQueryMode=simple connection, and the decoding of int, bigint, text,
// numeric, timestamptz, bytea, boolean, double precision, arrays and NULLs.
//
// The proxy run waits (settle) for pgmemo's replication stream to catch up
// before the reads whose hits it checks, so that the checks do not depend on
// how late the stream is.
//
// pgmemo invalidates a write through it when it commits (before its
// ReadyForQuery); the replication stream reports the same transaction a moment
// later. pgmemo recognizes its own transactions there when it could learn
// their ID (extended-protocol writes, as PgJDBC's) and then keeps what was
// filled in between; otherwise that fill is dropped. The checks after a write
// accept both: the first read is miss-filled (or miss-not-filled,
// invalidated_while_filling), and once the stream has caught up a read fills
// or hits, and the one after it is a hit.

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.io.PrintStream;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.logging.FileHandler;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;

public class Scenario {
    static final String TARGET = env("PGMEMO_TARGET");
    static final boolean PROXY = TARGET.equals("proxy");
    // stdout in UTF-8 whatever the locale (the test runs with LC_ALL=C); with
    // JDBC_TRACE_DIR set, also copied to <dir>/stdout-<target>.txt.
    static final PrintStream OUT = new PrintStream(stdout(), true, StandardCharsets.UTF_8);
    static Logger pgLogger; // a strong reference: JUL keeps loggers weakly
    static int failures;

    static final String COLS = "id, big, name, price, at, data, flag, score, tags, nums";

    public static void main(String[] args) throws Exception {
        if (!TARGET.equals("direct") && !TARGET.equals("proxy")) {
            throw new IllegalStateException("PGMEMO_TARGET must be direct or proxy, not " + TARGET);
        }
        trace();
        long start = System.nanoTime();
        try (Connection c = connect("")) {
            DatabaseMetaData md = c.getMetaData();
            result("driver", md.getDriverName() + " " + md.getDriverVersion());
            result("server.major", md.getDatabaseMajorVersion());

            setup(c);
            batchInsert(c);
            plainStatement(c);
            preparedReuse(c);
            preparedParams(c);
            describeOnly(c);
            writeThenRead(c);
            transactions(c);
            cursor(c);
            showFirstInTransaction(c);
            metadata(c);
        }
        try (Connection c = connect("preferQueryMode=simple")) {
            simpleMode(c);
        }
        OUT.printf("done in %d ms, %d assertion failures%n", (System.nanoTime() - start) / 1_000_000, failures);
        if (failures > 0) {
            System.exit(1);
        }
    }

    // ---- sections ----

    static void setup(Connection c) throws SQLException {
        try (Statement st = c.createStatement()) {
            result("setup.create", st.executeUpdate("CREATE TABLE items ("
                    + "id int PRIMARY KEY, big bigint, name text, price numeric(12,2), at timestamptz,"
                    + " data bytea, flag boolean, score double precision, tags text[], nums int[])"));
        }
    }

    static void batchInsert(Connection c) throws SQLException {
        OffsetDateTime t0 = OffsetDateTime.of(2024, 2, 29, 13, 45, 6, 789_000_000, ZoneOffset.UTC);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO items (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) {
            for (int i = 1; i <= 6; i++) {
                ps.setInt(1, i);
                if (i == 4) { // the row of NULLs
                    int[] types = {Types.BIGINT, Types.VARCHAR, Types.NUMERIC, Types.TIMESTAMP_WITH_TIMEZONE,
                        Types.BINARY, Types.BOOLEAN, Types.DOUBLE, Types.ARRAY, Types.ARRAY};
                    for (int j = 0; j < types.length; j++) {
                        ps.setNull(j + 2, types[j]);
                    }
                } else {
                    ps.setLong(2, 9_000_000_000L * i);
                    ps.setString(3, i == 3 ? "quote ' and \"double\", comma, \u00fcn\u00efc\u00f8d\u00e9 \u6f22" : "name" + i);
                    ps.setBigDecimal(4, new BigDecimal(i * 1000 + ".5"));
                    ps.setObject(5, t0.plusDays(i).plusNanos(i * 1000L));
                    ps.setBytes(6, new byte[] {0, (byte) i, (byte) 0xff, '\\', 'x'});
                    ps.setBoolean(7, i % 2 == 0);
                    ps.setDouble(8, i == 5 ? 1e-300 : i / 3.0);
                    ps.setArray(9, c.createArrayOf("text", i == 2 ? new String[] {"a", null, "c d", "{}"} : new String[] {"t" + i}));
                    ps.setArray(10, c.createArrayOf("int4", new Integer[] {i, -i, null}));
                }
                ps.addBatch();
            }
            result("batch.prepared", Arrays.toString(ps.executeBatch()));
        }
        try (Statement st = c.createStatement()) {
            st.addBatch("INSERT INTO items (id, name) VALUES (100, 'hundred')");
            st.addBatch("UPDATE items SET score = 'NaN' WHERE id = 6");
            st.addBatch("DELETE FROM items WHERE id = 100");
            result("batch.statement", Arrays.toString(st.executeBatch()));
        }
    }

    static void plainStatement(Connection c) throws SQLException {
        String q = "SELECT id, name, price FROM items ORDER BY id";
        settle(c);
        try (Statement st = c.createStatement()) {
            for (int i = 1; i <= 3; i++) {
                try (ResultSet rs = st.executeQuery(q)) {
                    result("statement." + i, rows(rs));
                }
                expectLast(c, "statement." + i, i == 1 ? "miss-filled" : "hit");
            }
        }
    }

    // One PreparedStatement executed 14 times, past prepareThreshold (5).
    // PgJDBC 42.5.5 sends, for executions 1-4: Parse(unnamed) Bind
    // Describe(portal) Execute Sync, text results; execution 5: Parse(S_n)
    // Bind(S_n) Describe(portal) Execute Sync, still text results; executions
    // 6+: Bind(S_n) Execute Sync, binary results for the types PgJDBC receives
    // in binary (int4, int8, float8, timestamptz, bytea, int4[], ...; text,
    // numeric, bool and text[] stay text). The cache key has the text,
    // parameter values and formats and result formats, not the statement
    // name: a key is a (result format, parameter) pair, the first execution of
    // each misses and the repetitions hit.
    static void preparedReuse(Connection c) throws SQLException {
        int[] ids = {1, 2, 1, 4, 2, 1, 2, 4, 5, 6, 1, 3, 4, 6};
        Set<String> seen = new HashSet<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT " + COLS + " FROM items WHERE id = ?")) {
            for (int i = 0; i < ids.length; i++) {
                ps.setInt(1, ids[i]);
                String label = "prepared." + (i + 1) + ".id" + ids[i];
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next()) {
                        result(label, describeRow(rs));
                        n++;
                    }
                    must(n == 1, label + ": want 1 row, got " + n);
                }
                String mode = phase(i + 1);
                String key = (mode.startsWith("binary") ? "binary" : "text") + ":" + ids[i];
                expectLast(c, label + "." + mode, seen.add(key) ? "miss-filled" : "hit");
            }
        }
        // A second PreparedStatement with the same SQL: PgJDBC's per-connection
        // statement cache hands it the same server-side statement, so its first
        // execution is already Bind(S_n) with binary results.
        try (PreparedStatement ps = c.prepareStatement("SELECT " + COLS + " FROM items WHERE id = ?")) {
            ps.setInt(1, 3);
            try (ResultSet rs = ps.executeQuery()) {
                must(rs.next(), "prepared.again: no row");
                result("prepared.again.id3", describeRow(rs));
            }
            expectLast(c, "prepared.again.id3.binary", "hit");
        }
    }

    // The result formats PgJDBC uses for the n-th execution of a
    // PreparedStatement (see preparedReuse).
    static String phase(int n) {
        return n <= 4 ? "text-unnamed" : n == 5 ? "text-named" : "binary-named";
    }

    // Parameters of several types, sent by PgJDBC in binary (int8, float8,
    // bool) or as text with an unspecified type (timestamptz via setObject,
    // numeric), again past prepareThreshold.
    static void preparedParams(Connection c) throws SQLException {
        String q = "SELECT id, name FROM items WHERE big >= ? AND score < ? AND at > ? AND price <= ? AND flag IS DISTINCT FROM ? ORDER BY id";
        OffsetDateTime since = OffsetDateTime.of(2024, 3, 1, 0, 0, 0, 0, ZoneOffset.ofHours(2));
        long[] bigs = {0, 9_000_000_001L, 0, 9_000_000_001L, 0, 9_000_000_001L, 0, 9_000_000_001L};
        Set<String> seen = new HashSet<>();
        try (PreparedStatement ps = c.prepareStatement(q)) {
            for (int i = 0; i < bigs.length; i++) {
                ps.setLong(1, bigs[i]);
                ps.setDouble(2, 10.0);
                ps.setObject(3, since);
                ps.setBigDecimal(4, new BigDecimal("99999.99"));
                ps.setBoolean(5, false);
                String label = "params." + (i + 1);
                try (ResultSet rs = ps.executeQuery()) {
                    result(label, rows(rs));
                }
                String mode = phase(i + 1);
                String fmt = mode.startsWith("binary") ? "binary" : "text";
                expectLast(c, label + "." + mode, seen.add(fmt + ":" + bigs[i]) ? "miss-filled" : "hit");
            }
        }
    }

    // getMetaData and getParameterMetaData before executing: PgJDBC sends
    // Parse/Describe/Sync without an Execute.
    static void describeOnly(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT id, at, tags FROM items WHERE id = ? AND name <> ?")) {
            for (int round = 1; round <= 2; round++) {
                ResultSetMetaData md = ps.getMetaData();
                StringBuilder b = new StringBuilder();
                for (int i = 1; i <= md.getColumnCount(); i++) {
                    b.append(md.getColumnName(i)).append(':').append(md.getColumnTypeName(i)).append(' ');
                }
                java.sql.ParameterMetaData pm = ps.getParameterMetaData();
                for (int i = 1; i <= pm.getParameterCount(); i++) {
                    b.append("$").append(i).append(':').append(pm.getParameterTypeName(i)).append(' ');
                }
                result("describe." + round, b.toString().trim());
            }
            ps.setInt(1, 2);
            ps.setString(2, "");
            try (ResultSet rs = ps.executeQuery()) {
                result("describe.execute", rows(rs));
            }
        }
    }

    // A write must be visible to the next read of the same query.
    static void writeThenRead(Connection c) throws SQLException {
        String q = "SELECT id, name FROM items WHERE id IN (1, 2) ORDER BY id";
        try (Statement st = c.createStatement()) {
            for (int i = 1; i <= 2; i++) {
                try (ResultSet rs = st.executeQuery(q)) {
                    result("write.before." + i, rows(rs));
                }
                expectLast(c, "write.before." + i, i == 1 ? "miss-filled" : "hit");
            }
            try (PreparedStatement up = c.prepareStatement("UPDATE items SET name = ? WHERE id = ?")) {
                up.setString(1, "renamed");
                up.setInt(2, 2);
                result("write.update", up.executeUpdate());
            }
            try (ResultSet rs = st.executeQuery(q)) {
                String r = rows(rs);
                result("write.after", r);
                must(r.contains("2|renamed"), "the update is not visible: " + r);
            }
            String after = expectLastAny(c, "write.after", "miss-filled", "miss-not-filled");
            // See the header: once the stream has reported the write, a read
            // fills (or hits, if the stream reported it before write.after
            // filled) and the next one hits.
            settle(c);
            try (ResultSet rs = st.executeQuery(q)) {
                result("write.after.settled", rows(rs));
            }
            expectLastAny(c, "write.after.settled", "miss-filled", "hit");
            try (ResultSet rs = st.executeQuery(q)) {
                result("write.after.again", rows(rs));
            }
            expectLast(c, "write.after.again", "hit");
            must(after != null, "write.after");
        }
    }

    static void transactions(Connection c) throws SQLException {
        String count = "SELECT count(*), sum(id) FROM items";
        String name1 = "SELECT name FROM items WHERE id = 1";
        try (Statement st = c.createStatement()) {
            settle(c);
            // Warm the cache in autocommit.
            for (int i = 1; i <= 2; i++) {
                result("tx.count.warm." + i, one(st, count));
                expectLast(c, "tx.count.warm." + i, i == 1 ? "miss-filled" : "hit");
                result("tx.name1.warm." + i, one(st, name1));
                expectLast(c, "tx.name1.warm." + i, i == 1 ? "miss-filled" : "hit");
            }

            // A read-only transaction: its reads may be hits (tx-policy until-write).
            c.setAutoCommit(false);
            result("tx.ro.count", one(st, count)); // PgJDBC sends BEGIN in the same batch
            expectLast(c, "tx.ro.first", "hit");
            result("tx.ro.name1", one(st, name1));
            expectLast(c, "tx.ro.second", "hit");
            c.commit();

            // Commit: the insert is visible to the next read, which misses.
            try (PreparedStatement ins = c.prepareStatement("INSERT INTO items (id, name, nums) VALUES (?, ?, ?)")) {
                ins.setInt(1, 7);
                ins.setString(2, "seven");
                ins.setArray(3, c.createArrayOf("int4", new Integer[] {7}));
                result("tx.commit.insert", ins.executeUpdate());
            }
            result("tx.commit.count.in", one(st, count));
            expectLast(c, "tx.commit.count.in", "bypass");
            c.commit();
            c.setAutoCommit(true);
            String after = one(st, count);
            result("tx.commit.count.after", after);
            must(after.equals("7|28"), "committed insert not visible: " + after);
            expectLast(c, "tx.commit.count.after", "miss-filled");

            // Rollback: the transaction sees its own update, later reads do not.
            settle(c);
            for (int i = 1; i <= 2; i++) {
                result("tx.name1.rewarm." + i, one(st, name1));
                expectLast(c, "tx.name1.rewarm." + i, i == 1 ? "miss-filled" : "hit");
            }
            c.setAutoCommit(false);
            result("tx.rollback.update", st.executeUpdate("UPDATE items SET name = 'rolled back' WHERE id = 1"));
            String in = one(st, name1);
            result("tx.rollback.name1.in", in);
            must(in.equals("rolled back"), "the transaction does not see its own update: " + in);
            expectLast(c, "tx.rollback.name1.in", "bypass");
            c.rollback();
            c.setAutoCommit(true);
            String out = one(st, name1);
            result("tx.rollback.name1.after", out);
            must(out.equals("name1"), "rolled back update visible: " + out);
            // Nothing was committed: the entry cached before the transaction is still right.
            expectLast(c, "tx.rollback.name1.after", "hit");
        }
    }

    // setFetchSize in a transaction: PgJDBC binds a named portal C_n and
    // executes it with a row limit (BEGIN, Parse, Bind(C_n), Describe(C_n),
    // Execute(C_n, 2), Sync), then fetches the rest with Execute(C_n, 2), Sync.
    // Row-limited Executes are passed through, never served from (nor stored
    // in) the cache, even when the whole result is cached. When the last
    // fetch ends the portal (CommandComplete), PgJDBC queues a Close(C_n) and
    // sends it in front of the connection's next statement, in the same batch.
    static void cursor(Connection c) throws SQLException {
        String q = "SELECT id, name FROM items ORDER BY id";
        settle(c);
        for (int i = 1; i <= 2; i++) {
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(q)) {
                result("cursor.warm." + i, rows(rs));
            }
            expectLast(c, "cursor.warm." + i, i == 1 ? "miss-filled" : "hit");
        }
        for (int round = 1; round <= 2; round++) {
            long hits = PROXY ? stat(c, "hits") : 0;
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement(q)) {
                ps.setFetchSize(2);
                try (ResultSet rs = ps.executeQuery()) {
                    List<String> got = new ArrayList<>();
                    while (rs.next()) {
                        got.add(rs.getInt(1) + "|" + rs.getString(2));
                        if (got.size() == 1) { // Execute(C_n, 2) after Bind
                            expectLast(c, "cursor." + round + ".first", "miss-not-cacheable", "row_limit");
                        } else if (got.size() == 3) { // a second Execute(C_n, 2)
                            expectLast(c, "cursor." + round + ".more", "miss-not-cacheable", "row_limit");
                        }
                    }
                    result("cursor." + round, got.size() + " rows: " + String.join(";", got));
                    must(got.size() == 7, "cursor: want 7 rows, got " + got.size());
                }
            }
            if (round == 1) {
                // Close(C_n), then SHOW pgmemo.last, in one batch.
                expectLast(c, "cursor.1.closed", "miss-not-cacheable", "row_limit");
            } else {
                // Close(C_n), then a cached read, in one batch (the
                // transaction has not written: the read may be a hit).
                try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(q)) {
                    result("cursor.2.closed.read", rows(rs));
                }
                if (expectLast(c, "cursor.2.closed.read", "hit").equals("hit")) {
                    hits++;
                }
            }
            try {
                c.commit();
            } catch (SQLException e) {
                OUT.println("commit after the cursor: " + e.getMessage().replace('\n', ' '));
                c.rollback();
            }
            c.setAutoCommit(true);
            if (PROXY) {
                long after = stat(c, "hits");
                check("cursor." + round + ".hits", after == hits, "hits: want " + hits + ", got " + after
                        + " (none from the row-limited Executes)");
            }
        }
    }

    // SHOW pgmemo.* as the first statement of a transaction: with autocommit
    // off PgJDBC sends Parse/Bind/Execute("BEGIN") and the SHOW's
    // Parse/Bind/Describe/Execute in one batch, up to one Sync.
    static void showFirstInTransaction(Connection c) throws SQLException {
        if (!PROXY) {
            return;
        }
        c.setAutoCommit(false);
        try {
            String[] l = last(c);
            check("show.first-in-tx", true, "last=" + l[0]);
        } catch (SQLException e) {
            check("show.first-in-tx", false, "SHOW pgmemo.last after BEGIN in the same batch: " + e.getMessage().replace('\n', ' '));
        }
        c.rollback();
        c.setAutoCommit(true);
    }

    static void metadata(Connection c) throws SQLException {
        DatabaseMetaData md = c.getMetaData();
        for (int round = 1; round <= 2; round++) {
            try (ResultSet rs = md.getTables(null, "public", "items", new String[] {"TABLE"})) {
                result("meta.tables." + round, cols(rs, "TABLE_SCHEM", "TABLE_NAME", "TABLE_TYPE"));
            }
            expectLast(c, "meta.tables." + round, "miss-not-cacheable");
            try (ResultSet rs = md.getColumns(null, "public", "items", null)) {
                result("meta.columns." + round, cols(rs, "COLUMN_NAME", "TYPE_NAME", "DATA_TYPE", "COLUMN_SIZE", "NULLABLE", "ORDINAL_POSITION"));
            }
            expectLast(c, "meta.columns." + round, "miss-not-cacheable");
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "items")) {
                result("meta.pk." + round, cols(rs, "TABLE_NAME", "COLUMN_NAME", "KEY_SEQ", "PK_NAME"));
            }
            expectLast(c, "meta.pk." + round, "miss-not-cacheable");
        }
    }

    // preferQueryMode=simple: PgJDBC sends Query messages, with parameters
    // inlined as literals.
    static void simpleMode(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + COLS + " FROM items WHERE id = ?")) {
            for (int id = 1; id <= 7; id++) {
                for (int i = 1; i <= 2; i++) {
                    ps.setInt(1, id);
                    String label = "simple.id" + id + "." + i;
                    try (ResultSet rs = ps.executeQuery()) {
                        must(rs.next(), label + ": no row");
                        result(label, describeRow(rs));
                    }
                    expectLast(c, label, i == 1 ? "miss-filled" : "hit");
                }
            }
        }
    }

    // ---- decoding ----

    // Every column of the current row: getObject's class and value, and
    // getString.
    static String describeRow(ResultSet rs) throws SQLException {
        ResultSetMetaData md = rs.getMetaData();
        StringBuilder b = new StringBuilder();
        for (int i = 1; i <= md.getColumnCount(); i++) {
            if (i > 1) {
                b.append(' ');
            }
            Object o = rs.getObject(i);
            b.append(md.getColumnName(i)).append('=').append(show(o));
            String str = rs.getString(i);
            if (str != null && str.startsWith("[B@")) {
                // PgJDBC 42.5.5 returns byte[].toString() for a bytea
                // received in binary: an identity hash, different every run.
                str = "<byte[].toString()>";
            }
            b.append("/str=").append(str == null ? "NULL" : "'" + str + "'");
            if (md.getColumnType(i) == Types.TIMESTAMP && o != null) {
                b.append("/odt=").append(rs.getObject(i, OffsetDateTime.class));
            }
            if (md.getColumnName(i).equals("big")) {
                long v = rs.getLong(i);
                b.append("/long=").append(v).append(rs.wasNull() ? "(null)" : "");
            }
        }
        return b.toString();
    }

    static String show(Object o) throws SQLException {
        if (o == null) {
            return "null";
        }
        if (o instanceof byte[]) {
            StringBuilder b = new StringBuilder("byte[]:");
            for (byte x : (byte[]) o) {
                b.append(String.format("%02x", x));
            }
            return b.toString();
        }
        if (o instanceof Array) {
            Array a = (Array) o;
            return "Array<" + a.getBaseTypeName() + ">:" + Arrays.deepToString((Object[]) a.getArray());
        }
        return o.getClass().getSimpleName() + ":" + o;
    }

    static String rows(ResultSet rs) throws SQLException {
        int n = rs.getMetaData().getColumnCount();
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> r = new ArrayList<>();
            for (int i = 1; i <= n; i++) {
                r.add(String.valueOf(rs.getString(i)));
            }
            out.add(String.join("|", r));
        }
        return out.size() + " rows: " + String.join(";", out);
    }

    static String cols(ResultSet rs, String... names) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            List<String> r = new ArrayList<>();
            for (String n : names) {
                r.add(String.valueOf(rs.getString(n)));
            }
            out.add(String.join("|", r));
        }
        return String.join(";", out);
    }

    static String one(Statement st, String q) throws SQLException {
        try (ResultSet rs = st.executeQuery(q)) {
            must(rs.next(), q + ": no row");
            int n = rs.getMetaData().getColumnCount();
            List<String> r = new ArrayList<>();
            for (int i = 1; i <= n; i++) {
                r.add(String.valueOf(rs.getString(i)));
            }
            must(!rs.next(), q + ": more than one row");
            return String.join("|", r);
        }
    }

    // ---- pgmemo checks (proxy run only) ----

    // SHOW pgmemo.last: how the connection's previous statement was served.
    static String[] last(Connection c) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SHOW pgmemo.last")) {
            if (!rs.next()) {
                throw new SQLException("SHOW pgmemo.last returned no row");
            }
            return new String[] {rs.getString("result"), rs.getString("reason")};
        }
    }

    // expectLast checks SHOW pgmemo.last: result is want[0] and, if given,
    // reason is want[1]. It returns the result seen ("" in the direct run).
    static String expectLast(Connection c, String label, String... want) throws SQLException {
        return expectLastIf(c, label, l -> l[0].equals(want[0]) && (want.length < 2 || want[1].equals(l[1])),
                "want=" + String.join(" ", want));
    }

    // expectLastAny checks that SHOW pgmemo.last's result is one of want.
    static String expectLastAny(Connection c, String label, String... want) throws SQLException {
        return expectLastIf(c, label, l -> java.util.Arrays.asList(want).contains(l[0]),
                "want one of " + String.join(" ", want));
    }

    static String expectLastIf(Connection c, String label, java.util.function.Predicate<String[]> ok, String wantDesc)
            throws SQLException {
        if (!PROXY) {
            return "";
        }
        String[] l;
        try {
            l = last(c);
        } catch (SQLException e) {
            check(label, false, "SHOW pgmemo.last failed: " + e.getMessage().replace('\n', ' '));
            return "";
        }
        boolean good = ok.test(l);
        check(label, good, "last=" + l[0] + (l[1].isEmpty() ? "" : " reason=" + l[1]) + (good ? "" : " " + wantDesc));
        return l[0];
    }

    static long stat(Connection c, String name) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SHOW pgmemo.stats")) {
            while (rs.next()) {
                if (rs.getString("name").equals(name)) {
                    return Long.parseLong(rs.getString("value"));
                }
            }
        }
        throw new SQLException("SHOW pgmemo.stats has no " + name);
    }

    // settle waits, in the proxy run, until pgmemo's replication stream has
    // reported everything written so far (SHOW pgmemo.replication's
    // received_lsn reaches the server's pg_current_wal_insert_lsn(); not
    // pg_current_wal_lsn(), which lags behind commits made with
    // synchronous_commit = off, as the test cluster runs), so that the hits
    // checked next do not depend on how late the stream is. Call it in
    // autocommit, before the read whose SHOW pgmemo.last is checked.
    static void settle(Connection c) throws SQLException {
        if (!PROXY) {
            return;
        }
        long want;
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT pg_current_wal_insert_lsn()::text")) {
            rs.next();
            want = lsn(rs.getString(1));
        }
        String db = c.getCatalog();
        long deadline = System.nanoTime() + 20_000_000_000L;
        for (;;) {
            long got = -1;
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SHOW pgmemo.replication")) {
                while (rs.next()) {
                    if (rs.getString("database").equals(db) && !rs.getString("received_lsn").isEmpty()) {
                        got = lsn(rs.getString("received_lsn"));
                    }
                }
            }
            if (got >= want) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new SQLException("pgmemo's replication stream did not reach " + want + " (at " + got + ")");
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                throw new SQLException(e);
            }
        }
    }

    static long lsn(String s) {
        String[] p = s.split("/");
        return Long.parseLong(p[0], 16) << 32 | Long.parseLong(p[1], 16);
    }

    static void check(String label, boolean ok, String detail) {
        OUT.println("check " + label + " " + (ok ? "ok" : "FAIL") + " " + detail);
    }

    // ---- plumbing ----

    static void result(String label, Object v) {
        OUT.println("result " + label + " " + v);
    }

    static void must(boolean cond, String msg) {
        if (!cond) {
            failures++;
            OUT.println("assertion failed: " + msg);
        }
    }

    static Connection connect(String extra) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", env("PGUSER"));
        p.setProperty("password", env("PGPASSWORD"));
        String url = env("JDBC_URL");
        if (!extra.isEmpty()) {
            url += (url.contains("?") ? "&" : "?") + extra;
        }
        return DriverManager.getConnection(url, p);
    }

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            throw new IllegalStateException(name + " is not set");
        }
        return v;
    }

    static OutputStream stdout() {
        OutputStream out = new FileOutputStream(FileDescriptor.out);
        String dir = System.getenv("JDBC_TRACE_DIR");
        if (dir == null || dir.isEmpty()) {
            return out;
        }
        try {
            OutputStream copy = new FileOutputStream(dir + "/stdout-" + TARGET + ".txt");
            return new OutputStream() {
                @Override public void write(int b) throws IOException { out.write(b); copy.write(b); }
                @Override public void write(byte[] b, int off, int len) throws IOException { out.write(b, off, len); copy.write(b, off, len); }
                @Override public void flush() throws IOException { out.flush(); copy.flush(); }
            };
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // trace sends PgJDBC's FINEST log to a file when JDBC_TRACE_DIR is set.
    // PgJDBC's own warnings still reach stderr through the root handler.
    static void trace() throws Exception {
        String dir = System.getenv("JDBC_TRACE_DIR");
        if (dir == null || dir.isEmpty()) {
            return;
        }
        pgLogger = Logger.getLogger("org.postgresql");
        FileHandler fh = new FileHandler(dir + "/jdbc-" + TARGET + ".log");
        fh.setFormatter(new SimpleFormatter());
        fh.setLevel(Level.FINEST);
        fh.setEncoding(StandardCharsets.UTF_8.name());
        pgLogger.addHandler(fh);
        pgLogger.setLevel(Level.FINEST);
    }
}
