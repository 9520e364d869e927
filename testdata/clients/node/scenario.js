'use strict'
// node-postgres (pg + pg-cursor) client scenario for pgmemo's client matrix.
// The contract (env vars, result/check lines) is in ../README.md; the harness
// is proxy/clients_matrix_test.go. Run it by hand with
//   PGMEMO_TARGET=direct DATABASE_URL=postgres://... node scenario.js
//
// What node-postgres sends:
//   client.query(text)                     simple Query
//   client.query(text, values)             Parse(unnamed) Bind Describe(P) Execute(0) Sync
//   client.query({text, queryMode:'extended'}) the same, without parameters
//   client.query({name, text, values})     first time Parse(name) Bind Describe(P) Execute Sync,
//                                          then Bind Describe(P) Execute Sync on that connection
//   new Cursor(text, values) + read(n)     Parse Bind Describe(P) Execute(n) Flush, then
//                                          Execute(n) Flush per read, Close(P) Sync at the end

const pg = require('pg')
const Cursor = require('pg-cursor')

const proxy = process.env.PGMEMO_TARGET === 'proxy'
const connectionString = process.env.DATABASE_URL
if (!connectionString) {
  console.error('DATABASE_URL is not set')
  process.exit(2)
}

// ---- output helpers -------------------------------------------------------

// canon turns what node-postgres decoded into a JSON value that prints the
// same every time: Buffers as hex, Dates as ISO strings, object keys sorted.
function canon(v) {
  if (v === null || v === undefined) return null
  if (Buffer.isBuffer(v)) return { bytea: v.toString('hex') }
  if (v instanceof Date) return { date: isNaN(v.getTime()) ? String(v) : v.toISOString() }
  if (Array.isArray(v)) return v.map(canon)
  if (typeof v === 'bigint') return { bigint: v.toString() }
  if (typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k])
    return o
  }
  return v
}

// rowsOf lists rows as [[column, value], ...] in the result's column order.
function rowsOf(res) {
  return res.rows.map((r) =>
    Array.isArray(r) ? r.map(canon) : res.fields.map((f) => [f.name, canon(r[f.name])])
  )
}

function fieldsOf(res) {
  return res.fields.map((f) => `${f.name}:${f.dataTypeID}:${f.format}`).join(',')
}

function result(label, value) {
  console.log(`result ${label} ${typeof value === 'string' ? value : JSON.stringify(value)}`)
}

// showResult prints everything the client decoded from a query result.
function showResult(label, res) {
  result(`${label}.command`, `${res.command} rowCount=${res.rowCount}`)
  result(`${label}.fields`, fieldsOf(res))
  result(`${label}.rows`, rowsOf(res))
}

let failedChecks = 0
function check(label, ok, detail) {
  if (!proxy) return
  if (!ok) failedChecks++
  console.log(`check ${label} ${ok ? 'ok' : 'FAIL'} ${detail}`)
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`)
}

// last is SHOW pgmemo.last on client c: how its previous statement was served.
async function last(c) {
  const r = await c.query('SHOW pgmemo.last')
  return r.rows[0]
}

// expectLast checks how c's previous statement was served. want is a result
// name, a list of them, or a predicate on the row.
async function expectLast(c, label, want, wantReason) {
  if (!proxy) return
  const l = await last(c)
  let ok
  if (typeof want === 'function') ok = want(l)
  else if (Array.isArray(want)) ok = want.includes(l.result)
  else ok = l.result === want
  if (wantReason !== undefined) ok = ok && l.reason === wantReason
  const w = typeof want === 'function' ? want.label || 'predicate' : [].concat(want).join('|')
  check(label, ok, `result=${l.result} reason=${l.reason || '-'} want=${w}${wantReason !== undefined ? ' reason=' + wantReason : ''}`)
}

async function stats(c) {
  const r = await c.query('SHOW pgmemo.stats')
  assert(r.fields.map((f) => f.name).join(',') === 'name,value', `SHOW pgmemo.stats columns: ${fieldsOf(r)}`)
  const m = {}
  for (const row of r.rows) m[row.name] = row.value
  return m
}

// notHit is the check on the first read after a write: it must not be served
// from the cache. (It should be miss-filled; see waitWAL for why it may be
// miss-not-filled.)
const notHit = (l) => l.result !== 'hit'
notHit.label = 'not-hit'

// lsnValue turns 'X/Y' into a number of bytes.
function lsnValue(s) {
  const [hi, lo] = String(s).split('/')
  return BigInt('0x' + hi) * 4294967296n + BigInt('0x' + lo)
}

// hitAfterEcho reads query again after a write and checks that it is a hit,
// once the write's echo on the replication stream (see waitWAL) has come: the
// read before it may still fill (if the echo dropped the earlier fill), the
// one after it must hit.
async function hitAfterEcho(c, label, query, values) {
  await waitWAL(c, label + '.replicated')
  await c.query(query, values)
  await expectLast(c, label + '.settled', ['hit', 'miss-filled'])
  const r = await c.query(query, values)
  await expectLast(c, label, 'hit')
  return r
}

// waitWAL waits, in the proxy run, until pgmemo's replication stream has
// reported every change committed so far. pgmemo invalidates what a client
// writes when the write commits and again when the stream brings the same
// commit: a read that fills the cache in between is dropped
// (miss-not-filled, invalidated_while_filling) or its entry invalidated. The
// setup and the sections after writes wait so that their reads test caching,
// not that echo; the reads right after the scenario's own writes do not wait
// (hitAfterEcho waits before it checks the hit that follows them).
async function waitWAL(c, label) {
  if (!proxy) return
  const target = lsnValue((await c.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn)
  const deadline = Date.now() + 15000
  for (;;) {
    const s = await stats(c)
    if (s.replication_received_lsn && lsnValue(s.replication_received_lsn) >= target) {
      check(label, true, `replication stream at ${s.replication_received_lsn}`)
      return
    }
    if (Date.now() > deadline) {
      check(label, false, `replication stream at ${s.replication_received_lsn}, server past it for 15s`)
      return
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

// ---- the scenario ---------------------------------------------------------

const ITEM_COLS = 'id, name, price, created, data, meta, tags, scores, note, flag, ratio, big'
const ITEMS_SQL = `SELECT ${ITEM_COLS} FROM items ORDER BY id`
const ITEM_BY_ID = `SELECT ${ITEM_COLS} FROM items WHERE id = $1`
const ITEMS_TOTAL = 'SELECT count(*) AS n, sum(price) AS total, max(id) AS max_id FROM items'

const seed = [
  [1, 'alpha', '12.50', new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), Buffer.from([0, 1, 2, 255]), { a: 1, nested: { b: [1, 2, 3] } }, ['x', 'y'], [1, 2, 3], null, true, 0.5, '9007199254740993'],
  [2, 'béta "quoted", with \\ and \' ', '0.01', new Date(Date.UTC(1999, 11, 31, 23, 59, 59)), Buffer.alloc(0), { s: 'ünïcode', n: null }, ['with space', 'comma,inside', null], [], 'a note', false, -1.25, '-42'],
  [3, 'gamma', '-99999999.99', new Date(Date.UTC(2038, 0, 19, 3, 14, 8)), Buffer.from('hello\n', 'utf8'), [1, 'two', false], [], [null, 7], '', null, 1e-10, '0'],
  [4, 'delta', '1000000.00', new Date(Date.UTC(2000, 1, 29, 12, 0, 0)), Buffer.from([0x5c, 0x00, 0x27]), {}, ['{braces}'], [42], null, true, 3.141592653589793, '1'],
  [5, 'epsilon', null, null, null, null, null, null, null, null, null, null],
]

async function setup(c) {
  await c.query(`CREATE TABLE items (
    id int PRIMARY KEY,
    name text NOT NULL,
    price numeric(12,2),
    created timestamptz,
    data bytea,
    meta jsonb,
    tags text[],
    scores int[],
    note text,
    flag boolean,
    ratio float8,
    big int8
  )`)
  await c.query('CREATE TABLE events (id serial PRIMARY KEY, item_id int NOT NULL REFERENCES items, kind text NOT NULL, at timestamptz NOT NULL)')
  for (const r of seed) {
    const v = r.slice()
    v[5] = v[5] === null ? null : JSON.stringify(v[5]) // jsonb: node-postgres would send a JS array as a PostgreSQL array
    await c.query('INSERT INTO items (id, name, price, created, data, meta, tags, scores, note, flag, ratio, big) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)', v)
  }
  const ev = await c.query(
    "INSERT INTO events (item_id, kind, at) SELECT i % 5 + 1, 'kind' || (i % 3), timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour' FROM generate_series(1, 40) i RETURNING id"
  )
  showResult('setup.events', { ...ev, rows: [], fields: ev.fields })
}

// plain: simple-protocol reads, repeated.
async function plain(c) {
  for (let i = 1; i <= 3; i++) {
    const r = await c.query(ITEMS_SQL)
    showResult(`plain.items.${i}`, r)
    await expectLast(c, `plain.items.${i}`, i === 1 ? 'miss-filled' : 'hit')
  }
  const total = await c.query(ITEMS_TOTAL)
  showResult('plain.total.1', total)
  await expectLast(c, 'plain.total.1', 'miss-filled')
  const total2 = await c.query(ITEMS_TOTAL)
  showResult('plain.total.2', total2)
  await expectLast(c, 'plain.total.2', 'hit')

  // rowMode array: decoded the same, only delivered as arrays
  const arr = await c.query({ text: 'SELECT kind, count(*) AS n, min(at) AS first FROM events GROUP BY kind ORDER BY kind', rowMode: 'array' })
  showResult('plain.array.1', arr)
  await expectLast(c, 'plain.array.1', 'miss-filled')
  const arr2 = await c.query({ text: 'SELECT kind, count(*) AS n, min(at) AS first FROM events GROUP BY kind ORDER BY kind', rowMode: 'array' })
  showResult('plain.array.2', arr2)
  await expectLast(c, 'plain.array.2', 'hit')

  // not cacheable: a volatile function (its value is not printed)
  const rnd = await c.query('SELECT random() < 2 AS yes')
  showResult('plain.random', rnd)
  await expectLast(c, 'plain.random', 'miss-not-cacheable', 'volatile_function:random')

  // an empty result
  const none = await c.query("SELECT id, name FROM items WHERE name = 'nobody'")
  showResult('plain.empty.1', none)
  await expectLast(c, 'plain.empty.1', 'miss-filled')
  const none2 = await c.query("SELECT id, name FROM items WHERE name = 'nobody'")
  showResult('plain.empty.2', none2)
  await expectLast(c, 'plain.empty.2', 'hit')
}

// params: extended-protocol reads with parameters of many types.
async function params(c) {
  for (const [round, want] of [[1, 'miss-filled'], [2, 'hit'], [3, 'hit']]) {
    for (const id of [1, 2, 5]) {
      const r = await c.query(ITEM_BY_ID, [id])
      showResult(`params.by_id.${id}.${round}`, r)
      await expectLast(c, `params.by_id.${id}.${round}`, want)
    }
  }
  // the same statement text with a parameter given as a string: the same bytes on the wire
  const s = await c.query(ITEM_BY_ID, ['2'])
  showResult('params.by_id.2.string', s)
  await expectLast(c, 'params.by_id.2.string', 'hit')

  // one parameter of each kind, echoed back through casts and used in a filter
  const q = `SELECT id, name, $1::int AS p_int, $2::text AS p_text, $3::numeric AS p_num, $4::timestamptz AS p_ts,
      $5::bytea AS p_bytea, $6::jsonb AS p_json, $7::int[] AS p_ints, $8::text[] AS p_texts, $9::text AS p_null, $10::bool AS p_bool
    FROM items WHERE id <= $1 AND (tags && $8::text[] OR data = $5 OR meta @> $6::jsonb) ORDER BY id`
  const vals = [4, 'tëxt \'q\' "dq"', '-0.000001', new Date(Date.UTC(2024, 5, 30, 22, 15, 0, 123)), Buffer.from([0, 1, 2, 255]),
    JSON.stringify({ a: 1 }), [1, null, -3], ['x', 'comma,inside', '{braces}', null], null, false]
  for (let i = 1; i <= 2; i++) {
    const r = await c.query(q, vals)
    showResult(`params.typed.${i}`, r)
    await expectLast(c, `params.typed.${i}`, i === 1 ? 'miss-filled' : 'hit')
  }
  // a different value of one parameter is a different entry
  const vals2 = vals.slice()
  vals2[9] = true
  const r2 = await c.query(q, vals2)
  showResult('params.typed.other', r2)
  await expectLast(c, 'params.typed.other', 'miss-filled')

  // a parameterless statement over the extended protocol
  for (let i = 1; i <= 2; i++) {
    const r = await c.query({ text: ITEMS_SQL, queryMode: 'extended' })
    showResult(`params.extended_noparams.${i}`, r)
    await expectLast(c, `params.extended_noparams.${i}`, i === 1 ? 'miss-filled' : 'hit')
  }

  // results requested in binary format: a different entry from the text
  // one. (pg-types' binary parsers decode only some types right, and slowly:
  // float8, numeric, timestamptz, negative int8 and arrays with NULLs come out
  // wrong with pg 8.23 / pg-types 2.2, so only types it decodes are used.)
  const bq = 'SELECT id, name, flag, note, scores FROM items WHERE id = ANY($1::int[]) ORDER BY id'
  const bt = await c.query(bq, [[1, 2, 4, 5]])
  showResult('params.format.text', bt)
  await expectLast(c, 'params.format.text', 'miss-filled')
  for (let i = 1; i <= 2; i++) {
    const bb = await c.query({ text: bq, values: [[1, 2, 4, 5]], binary: true })
    showResult(`params.format.binary.${i}`, bb)
    await expectLast(c, `params.format.binary.${i}`, i === 1 ? 'miss-filled' : 'hit')
  }
}

// named: named prepared statements, parsed once per connection.
async function named(c, other) {
  const byId = (id) => ({ name: 'item_by_id', text: ITEM_BY_ID, values: [id] })
  const byTag = (tag) => ({ name: 'items_by_tag', text: `SELECT id, name, tags FROM items WHERE $1 = ANY(tags) ORDER BY id`, values: [tag] })
  for (const [round, want] of [[1, 'hit'], [2, 'hit']]) {
    // ITEM_BY_ID with these values is cached already (params): a named
    // statement of the same text and parameters is the same entry
    const r = await c.query(byId(1))
    showResult(`named.by_id.1.${round}`, r)
    await expectLast(c, `named.by_id.1.${round}`, want)
  }
  const r3 = await c.query(byId(3))
  showResult('named.by_id.3.1', r3)
  await expectLast(c, 'named.by_id.3.1', 'miss-filled')
  const r3b = await c.query(byId(3))
  showResult('named.by_id.3.2', r3b)
  await expectLast(c, 'named.by_id.3.2', 'hit')
  for (let i = 1; i <= 3; i++) {
    const r = await c.query(byTag('x'))
    showResult(`named.by_tag.x.${i}`, r)
    await expectLast(c, `named.by_tag.x.${i}`, i === 1 ? 'miss-filled' : 'hit')
  }

  // another connection: its first use of the statement is answered from the
  // cache (Parse and all); the next use with new values must reach the
  // server, which by then needs the statement.
  const o1 = await other.query(byTag('x'))
  showResult('named.other.by_tag.x', o1)
  await expectLast(other, 'named.other.by_tag.x', 'hit')
  const o2 = await other.query(byTag('comma,inside'))
  showResult('named.other.by_tag.comma', o2)
  await expectLast(other, 'named.other.by_tag.comma', 'miss-filled')
  const o3 = await other.query(byTag('{braces}'))
  showResult('named.other.by_tag.braces', o3)
  await expectLast(other, 'named.other.by_tag.braces', 'miss-filled')
  const o4 = await other.query(byTag('comma,inside'))
  showResult('named.other.by_tag.comma.2', o4)
  await expectLast(other, 'named.other.by_tag.comma.2', 'hit')
  // and the first connection sees the other's fill
  const r5 = await c.query(byTag('{braces}'))
  showResult('named.by_tag.braces', r5)
  await expectLast(c, 'named.by_tag.braces', 'hit')

  // a named statement with no parameters
  for (let i = 1; i <= 2; i++) {
    const r = await c.query({ name: 'items_total', text: ITEMS_TOTAL })
    showResult(`named.total.${i}`, r)
    await expectLast(c, `named.total.${i}`, i === 1 ? 'miss-filled' : 'hit')
  }
}

// readCursor reads a cursor's rows in batches of n, printing each batch.
async function readCursor(label, cur, sizes) {
  const all = []
  let i = 0
  for (const n of sizes) {
    const rows = await cur.read(n)
    result(`${label}.batch${++i}`, `n=${n} got=${rows.length} ${JSON.stringify(rowsOf({ rows, fields: cur._result.fields }))}`)
    all.push(...rows)
    if (rows.length === 0) break
  }
  await cur.close()
  return all
}

// cursor: pg-cursor reads in batches, inside a transaction block and outside one.
async function cursor(c) {
  // the same text as params.extended_noparams, which is cached: the cursor's
  // row-limited Executes must still go upstream
  const full = await c.query({ text: ITEMS_SQL, queryMode: 'extended' })
  await expectLast(c, 'cursor.before', 'hit')

  await c.query('BEGIN')
  const cur = c.query(new Cursor(ITEMS_SQL))
  const rows = await readCursor('cursor.items', cur, [2, 2, 10, 10])
  assert(JSON.stringify(rowsOf({ rows, fields: full.fields })) === JSON.stringify(rowsOf(full)), 'the cursor read the same rows as the query')
  result('cursor.items.fields', fieldsOf({ fields: cur._result.fields }))
  await expectLast(c, 'cursor.items', 'miss-not-cacheable', 'row_limit')

  // a cursor with parameters, closed before its end
  const cur2 = c.query(new Cursor('SELECT id, item_id, kind, at FROM events WHERE item_id = $1 AND kind <> $2 ORDER BY id', [2, 'kind0']))
  await readCursor('cursor.events', cur2, [3, 1])
  await expectLast(c, 'cursor.events', 'miss-not-cacheable', 'row_limit')

  // a read in the transaction before any write may be served from the cache
  const inTx = await c.query({ text: ITEMS_SQL, queryMode: 'extended' })
  showResult('cursor.in_tx', inTx)
  await expectLast(c, 'cursor.in_tx', 'hit')
  await c.query('COMMIT')

  // a cursor outside a transaction block: its portal lives in the implicit
  // transaction its Flush-ended batches keep open, until the Sync at close.
  // ITEM_BY_ID is cached and described (params, named), so pgmemo can answer
  // the cursor's Parse/Bind/Describe/Flush itself; its Execute must then
  // bring the portal to the server.
  await expectLast(c, 'cursor.commit', 'miss-not-cacheable', 'not_a_read')
  try {
    const cur3 = c.query(new Cursor(ITEM_BY_ID, [4]))
    await readCursor('cursor.autocommit', cur3, [1, 1])
    await expectLast(c, 'cursor.autocommit', 'miss-not-cacheable', 'row_limit')
  } catch (e) {
    // printed as a result too, so that the direct and proxy runs differ
    result('cursor.autocommit.error', `${e.code} ${e.message}`)
    check('cursor.autocommit', false, `the cursor failed: ${e.code} ${e.message}`)
  }
  const again = await c.query(ITEM_BY_ID, [4])
  showResult('cursor.after', again)
  await expectLast(c, 'cursor.after', 'miss-filled')
}

// tx: writes are seen by the next read; a rollback leaves the cache as it was.
async function tx(c) {
  const t0 = await c.query(ITEMS_TOTAL)
  showResult('tx.total.0', t0)
  await expectLast(c, 'tx.total.0', 'hit')

  // BEGIN, reads, a write, reads, COMMIT
  await c.query('BEGIN')
  const t1 = await c.query(ITEMS_TOTAL)
  showResult('tx.commit.before_write', t1)
  await expectLast(c, 'tx.commit.before_write', 'hit')
  const p1 = await c.query(ITEM_BY_ID, [2])
  showResult('tx.commit.before_write.param', p1)
  await expectLast(c, 'tx.commit.before_write.param', 'hit')
  const ins = await c.query(
    `INSERT INTO items (id, name, price, created, data, meta, tags, scores, note, flag, ratio, big)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ${ITEM_COLS}`,
    [6, 'zeta', '6.66', new Date(Date.UTC(2025, 2, 3, 4, 5, 6)), Buffer.from([6, 6]), JSON.stringify({ six: [6] }), ['x', 'six'], [6], null, true, 6.5, '6']
  )
  showResult('tx.commit.insert', ins)
  const t2 = await c.query(ITEMS_TOTAL)
  showResult('tx.commit.after_write', t2)
  assert(t2.rows[0].n === '6', `the transaction sees its insert: ${JSON.stringify(t2.rows)}`)
  await expectLast(c, 'tx.commit.after_write', notHit)
  const p2 = await c.query(ITEM_BY_ID, [6])
  showResult('tx.commit.after_write.param', p2)
  assert(p2.rowCount === 1, 'the transaction sees its insert (by id)')
  await expectLast(c, 'tx.commit.after_write.param', notHit)
  await c.query('COMMIT')

  const t3 = await c.query(ITEMS_TOTAL)
  showResult('tx.commit.after_commit.1', t3)
  assert(t3.rows[0].n === '6', `the committed insert is seen: ${JSON.stringify(t3.rows)}`)
  await expectLast(c, 'tx.commit.after_commit.1', notHit)
  const t4 = await hitAfterEcho(c, 'tx.commit.after_commit.2', ITEMS_TOTAL)
  showResult('tx.commit.after_commit.2', t4)
  const tag = await c.query({ name: 'items_by_tag', text: `SELECT id, name, tags FROM items WHERE $1 = ANY(tags) ORDER BY id`, values: ['x'] })
  showResult('tx.commit.after_commit.by_tag', tag)
  assert(tag.rows.some((r) => r.id === 6), 'the named statement sees the committed insert')
  await expectLast(c, 'tx.commit.after_commit.by_tag', notHit)

  // BEGIN, a write, a read, ROLLBACK: the rolled-back write is not seen.
  // (First the committed insert's echo on the replication stream, see waitWAL.)
  await waitWAL(c, 'tx.rollback.replicated')
  const r0 = await c.query(ITEMS_TOTAL) // the echo may have invalidated what tx.commit.after_commit.2 read
  showResult('tx.rollback.before', r0)
  await expectLast(c, 'tx.rollback.before', ['hit', 'miss-filled'])
  const r0p = await c.query(ITEM_BY_ID, [1])
  showResult('tx.rollback.before.param', r0p)
  await expectLast(c, 'tx.rollback.before.param', 'miss-filled')
  await c.query('BEGIN')
  const up = await c.query('UPDATE items SET price = price + 100, note = $1 WHERE id = $2', ['rolled back', 1])
  result('tx.rollback.update', `${up.command} rowCount=${up.rowCount}`)
  const r1 = await c.query(ITEMS_TOTAL)
  showResult('tx.rollback.after_write', r1)
  await expectLast(c, 'tx.rollback.after_write', notHit)
  const r1p = await c.query(ITEM_BY_ID, [1])
  showResult('tx.rollback.after_write.param', r1p)
  assert(r1p.rows[0].note === 'rolled back', 'the transaction sees its update')
  await expectLast(c, 'tx.rollback.after_write.param', notHit)
  await c.query('ROLLBACK')
  const r2 = await c.query(ITEMS_TOTAL)
  showResult('tx.rollback.after_rollback', r2)
  assert(JSON.stringify(rowsOf(r2)) === JSON.stringify(rowsOf(r0)), 'the rollback undid the update')
  await expectLast(c, 'tx.rollback.after_rollback', 'hit')
  const r2p = await c.query(ITEM_BY_ID, [1])
  showResult('tx.rollback.after_rollback.param', r2p)
  assert(r2p.rows[0].note === null, 'the rollback undid the update (by id)')
  await expectLast(c, 'tx.rollback.after_rollback.param', 'hit')

  // an error aborts a transaction; reads in it fail, the ROLLBACK recovers
  await c.query('BEGIN')
  const ok1 = await c.query(ITEMS_TOTAL)
  showResult('tx.failed.before_error', ok1)
  let msg = 'no error'
  try {
    await c.query('INSERT INTO items (id, name) VALUES ($1, $2)', [1, 'duplicate'])
  } catch (e) {
    msg = `${e.code} ${e.message}`
  }
  result('tx.failed.error', msg)
  msg = 'no error'
  try {
    await c.query(ITEMS_TOTAL)
  } catch (e) {
    msg = `${e.code} ${e.message}`
  }
  result('tx.failed.read', msg)
  await c.query('ROLLBACK')
  const ok2 = await c.query(ITEMS_TOTAL)
  showResult('tx.failed.after_rollback', ok2)
  await expectLast(c, 'tx.failed.after_rollback', 'hit')

  // an autocommit write through the extended protocol, then reads
  const up2 = await c.query('UPDATE items SET price = $1, meta = meta || $2::jsonb WHERE id = $3', ['13.00', JSON.stringify({ updated: true }), 1])
  result('tx.autocommit.update', `${up2.command} rowCount=${up2.rowCount}`)
  const a1 = await c.query(ITEM_BY_ID, [1])
  showResult('tx.autocommit.after_update.param', a1)
  assert(a1.rows[0].price === '13.00' && a1.rows[0].meta.updated === true, 'the update is seen')
  await expectLast(c, 'tx.autocommit.after_update.param', notHit)
  const a1b = await hitAfterEcho(c, 'tx.autocommit.after_update.param.2', ITEM_BY_ID, [1])
  assert(JSON.stringify(rowsOf(a1)) === JSON.stringify(rowsOf(a1b)), 'a hit returns what the miss did (by id)')
  const a2 = await c.query(ITEMS_SQL)
  showResult('tx.autocommit.after_update.items', a2)
  await expectLast(c, 'tx.autocommit.after_update.items', notHit)
  const a3 = await hitAfterEcho(c, 'tx.autocommit.after_update.items.2', ITEMS_SQL)
  assert(JSON.stringify(rowsOf(a2)) === JSON.stringify(rowsOf(a3)), 'a hit returns what the miss did')
}

// pool: 10 connections, many concurrent reads, counted with SHOW pgmemo.stats.
async function pool(admin) {
  const p = new pg.Pool({ connectionString, max: 10 })
  const queries = []
  queries.push({ key: 'simple.items', run: (c) => c.query(ITEMS_SQL) })
  queries.push({ key: 'simple.events', run: (c) => c.query('SELECT kind, count(*) AS n, array_agg(id ORDER BY id) AS ids FROM events GROUP BY kind ORDER BY kind') })
  for (const id of [1, 2, 3, 4, 5, 6]) {
    queries.push({ key: `param.by_id.${id}`, run: (c) => c.query(ITEM_BY_ID, [id]) })
  }
  for (const item of [1, 3, 5]) {
    queries.push({
      key: `named.events.${item}`,
      run: (c) => c.query({ name: 'events_of', text: 'SELECT id, kind, at FROM events WHERE item_id = $1 ORDER BY id', values: [item] }),
    })
  }

  // open all 10 connections, fill the cache from one of them
  const clients = await Promise.all(Array.from({ length: 10 }, () => p.connect()))
  result('pool.connections', `total=${p.totalCount}`)
  const expected = {}
  for (const q of queries) {
    const r = await q.run(clients[0])
    expected[q.key] = JSON.stringify([fieldsOf(r), rowsOf(r)])
    await expectLast(clients[0], `pool.fill.${q.key}`, ['miss-filled', 'hit'])
  }
  clients.forEach((c) => c.release())

  const before = proxy ? await stats(admin) : null
  const rounds = 20
  const jobs = []
  for (let i = 0; i < rounds; i++) {
    for (const q of queries) {
      jobs.push(q.run(p).then((r) => ({ key: q.key, got: JSON.stringify([fieldsOf(r), rowsOf(r)]) })))
    }
  }
  const got = await Promise.all(jobs)
  const after = proxy ? await stats(admin) : null
  result('pool.reads', `n=${got.length} connections=${p.totalCount}`)
  for (const q of queries) {
    const mine = got.filter((g) => g.key === q.key)
    const same = mine.every((g) => g.got === expected[q.key])
    result(`pool.${q.key}`, `reads=${mine.length} all_as_first=${same} ${expected[q.key]}`)
    assert(same, `every pooled read of ${q.key} returned the same as the first`)
  }
  if (proxy) {
    const dh = Number(after.hits) - Number(before.hits)
    const dm = Number(after.misses) - Number(before.misses)
    check('pool.stats.hits', dh === got.length, `hits rose by ${dh}, want ${got.length}`)
    check('pool.stats.misses', dm === 0, `misses rose by ${dm}, want 0`)
  }

  // a write on one pooled connection is seen by a read on another
  const w = await p.connect()
  const r = await p.connect()
  const before2 = await r.query(ITEM_BY_ID, [3])
  await expectLast(r, 'pool.write.before', 'hit')
  await w.query('UPDATE items SET note = $1 WHERE id = $2', ['seen by the pool', 3])
  const after2 = await r.query(ITEM_BY_ID, [3])
  showResult('pool.write.after', after2)
  assert(after2.rows[0].note === 'seen by the pool' && before2.rows[0].note === '', 'the pool sees the write of another connection')
  await expectLast(r, 'pool.write.after', notHit)
  const after3 = await hitAfterEcho(w, 'pool.write.after.other', ITEM_BY_ID, [3])
  assert(JSON.stringify(rowsOf(after3)) === JSON.stringify(rowsOf(after2)), 'both connections see the same')
  w.release()
  r.release()
  await p.end()
}

async function main() {
  const start = Date.now()
  const c = new pg.Client({ connectionString })
  const other = new pg.Client({ connectionString })
  const admin = new pg.Client({ connectionString })
  await Promise.all([c.connect(), other.connect(), admin.connect()])
  c.on('notice', (n) => console.log(`notice ${n.severity}: ${n.message}`))
  try {
    const v = await c.query("SELECT current_setting('server_version_num')::int >= 150000 AS pg15")
    result('server.pg15_or_later', String(v.rows[0].pg15))
    await setup(c)
    await waitWAL(c, 'setup.replicated')
    await plain(c)
    await params(c)
    await named(c, other)
    await cursor(c)
    await tx(c)
    await waitWAL(c, 'pool.replicated')
    await pool(admin)
  } finally {
    await Promise.all([c.end(), other.end(), admin.end()])
  }
  console.log(`node-postgres scenario done (${process.env.PGMEMO_TARGET}), failed checks ${failedChecks}, ${Date.now() - start} ms`)
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e)
  process.exit(1)
})
