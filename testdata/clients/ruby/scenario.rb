# Client-matrix scenario for Ruby pg (libpq): exec (simple protocol),
# exec_params in text and binary result format, prepare/exec_prepared reused,
# COPY FROM STDIN and COPY TO STDOUT with copy_data, a transaction. See
# testdata/clients/README.md for the contract: "result" lines with what pg
# decoded (the same directly and through pgmemo) and, through pgmemo only,
# "check" lines from SHOW pgmemo.last and SHOW pgmemo.stats.
require 'pg'
require 'json'
require 'bigdecimal'

$stdout.sync = true
PROXY = ENV['PGMEMO_TARGET'] == 'proxy'
STARTED = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def result(label, value)
  puts "result #{label} #{value}"
end

def check(label, ok, detail)
  return unless PROXY
  puts "check #{label} #{ok ? 'ok' : 'FAIL'} #{detail}"
end

# How the connection's previous statement was served (SHOW pgmemo.last,
# answered by pgmemo in the simple protocol).
def last(conn)
  r = conn.exec('SHOW pgmemo.last')
  [r.getvalue(0, 0), r.getvalue(0, 1)]
end

def expect_last(conn, label, *want)
  return unless PROXY
  res, reason = last(conn)
  ok = want.include?(res) || want.include?("#{res}/#{reason}")
  check(label, ok, "served #{res} (reason #{reason.inspect}), want #{want.join(' or ')}")
end

# How the first read after a write through pgmemo may be served: not a hit.
# pgmemo invalidates what the write touched when it commits, so the read goes
# upstream and fills, unless the write's own invalidation through the
# replication stream, which follows the commit by about as long as the read
# takes, arrives while it fills: the result is then not stored.
AFTER_WRITE = ['miss-filled', 'miss-not-filled/invalidated_while_filling'].freeze

def stats(conn)
  return {} unless PROXY
  conn.exec('SHOW pgmemo.stats').each_with_object({}) { |row, h| h[row['name']] = row['value'] }
end

def parse_lsn(s)
  hi, lo = s.to_s.split('/', 2)
  return 0 unless lo
  (hi.to_i(16) << 32) | lo.to_i(16)
end

# Wait until pgmemo's replication stream has reached the server's current WAL
# position: the invalidations of the writes made so far have all arrived, so
# a read filled after this is not evicted by an earlier write's own WAL.
def wait_wal(conn, label)
  return unless PROXY
  # The insert position: under synchronous_commit=off a commit may not be
  # written yet, and pg_current_wal_lsn() (the write position) would be short
  # of it.
  want = parse_lsn(conn.exec('SELECT pg_current_wal_insert_lsn()::text').getvalue(0, 0))
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
  loop do
    st = stats(conn)
    return if parse_lsn(st['replication_received_lsn']) >= want && st['replication_serving'] == 'true'
    if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      check("#{label}/wal-current", false, "stream at #{st['replication_received_lsn']}, serving #{st['replication_serving']}")
      return
    end
    sleep 0.01
  end
end

# A stable text for a value pg decoded.
def fmt(v)
  case v
  when nil then 'NULL'
  when true, false then v.to_s
  when Integer then "int:#{v}"
  when Float then "float:#{v}"
  when BigDecimal then "numeric:#{v.to_s('F')}"
  when Time then v.utc.strftime('%Y-%m-%dT%H:%M:%S.%6NZ')
  when Array then '{' + v.map { |e| fmt(e) }.join(',') + '}'
  when Hash then 'json:' + JSON.generate(v)
  when String
    v.encoding == Encoding::BINARY ? '\\x' + v.unpack1('H*') : v.inspect
  else "#{v.class}:#{v.inspect}"
  end
end

# The columns (name:type oid:format), the rows as decoded, and the command
# status of a result.
def fmt_result(r)
  cols = (0...r.nfields).map { |i| "#{r.fname(i)}:#{r.ftype(i)}:#{r.fformat(i)}" }
  rows = r.values.map { |row| '(' + row.map { |v| fmt(v) }.join(' ') + ')' }
  "[#{cols.join(',')}] #{rows.join(' ')} status=#{r.cmd_status.inspect}"
end

conn = PG.connect(ENV.fetch('DATABASE_URL'))
result 'versions', "pg-gem=#{PG::VERSION.split('.').first(2).join('.')}"

# --- schema: every table has a primary key (through pgmemo the database has a
# FOR ALL TABLES publication, under which UPDATE needs a replica identity).
conn.exec(<<~SQL)
  CREATE TABLE items (
    id int8 PRIMARY KEY,
    small int2,
    name text NOT NULL,
    price numeric(10,2),
    ratio float8,
    flag bool,
    tags text[],
    at timestamptz,
    data bytea,
    doc jsonb,
    note text
  )
SQL
r = conn.exec(<<~SQL)
  INSERT INTO items
  SELECT g, g::int2, 'item ' || g, g * 1.25, g / 8.0, g % 2 = 0,
         ARRAY['t' || g, 'common', CASE WHEN g % 3 = 0 THEN NULL ELSE 'x' END],
         timestamptz '2024-02-29 23:59:58.123456+00' + g * interval '1 day 1 hour',
         CASE WHEN g % 4 = 0 THEN NULL ELSE decode(lpad(to_hex(g * 4097), 6, '0') || '00ff', 'hex') END,
         jsonb_build_object('n', g, 'even', g % 2 = 0, 'list', jsonb_build_array(g, 'a', NULL)),
         CASE WHEN g % 2 = 0 THEN 'note ' || g END
  FROM generate_series(1, 30) g
SQL
result 'setup/insert', r.cmd_status
conn.exec('CREATE TABLE copied (id int4 PRIMARY KEY, label text, amount numeric(12,3), at timestamptz, data bytea, nums int4[])')
wait_wal(conn, 'setup')

# Decoders for text results (numeric as BigDecimal, arrays, json, timestamptz,
# bytea...) and binary ones (ints, text, bytea, bool, float, timestamptz).
TEXT_MAP = PG::BasicTypeMapForResults.new(conn)
BINARY_MAP = TEXT_MAP # the same map has pg's binary decoders

# --- exec: the simple protocol, no parameters.
sql = 'SELECT id, small, name, price, ratio, flag, tags, at, data, doc, note FROM items WHERE id IN (1, 2, 3, 4) ORDER BY id'
(1..3).each do |run|
  res = conn.exec(sql)
  res.type_map = TEXT_MAP
  result "exec##{run}", fmt_result(res)
  expect_last(conn, "exec##{run}", run == 1 ? 'miss-filled' : 'hit')
end
# Several statements in one Query: answered correctly, never cached.
2.times do |i|
  res = conn.exec("SELECT count(*) AS n FROM items; SELECT name FROM items WHERE id = 3")
  result "exec/multi##{i + 1}", fmt_result(res)
  expect_last(conn, "exec/multi##{i + 1}", 'miss-not-cacheable/multi_statement')
end
# Undecoded: the text the server sent.
res = conn.exec("SELECT price, tags, at, data, doc FROM items WHERE id = 5")
result 'exec/raw', fmt_result(res)

# --- exec_params, text results.
sql = 'SELECT id, small, name, price, ratio, flag, tags, at, data, doc, note FROM items WHERE id = ANY($1::int8[]) ORDER BY id'
(1..3).each do |run|
  res = conn.exec_params(sql, ['{5,6,7,8}'])
  res.type_map = TEXT_MAP
  result "exec_params/text##{run}", fmt_result(res)
  expect_last(conn, "exec_params/text##{run}", run == 1 ? 'miss-filled' : 'hit')
end

# --- exec_params, binary results (result_format 1), and a binary parameter.
bin_sql = 'SELECT id, small, id::int4 AS i4, name, ratio, flag, at, data, note, price FROM items WHERE id BETWEEN $1 AND $2 OR data = $3 ORDER BY id'
# data = $3 matches row 1's bytea, sent as a binary parameter.
bin_params = [9, 11, { value: ['00100100ff'].pack('H*'), type: 17, format: 1 }]
# Decoders by column; price (numeric) has no binary decoder in pg: its raw
# bytes are shown.
BD = PG::BinaryDecoder
bin_map = PG::TypeMapByColumn.new([BD::Integer.new, BD::Integer.new, BD::Integer.new, BD::String.new, BD::Float.new,
                                   BD::Boolean.new, BD::TimestampUtcToLocal.new, BD::Bytea.new, BD::String.new, nil])
(1..3).each do |run|
  res = conn.exec_params(bin_sql, bin_params, 1)
  res.type_map = bin_map
  out = res.values.map do |row|
    '(' + row.each_with_index.map { |v, i| res.fname(i) == 'price' && v ? '\\x' + v.unpack1('H*') : fmt(v) }.join(' ') + ')'
  end
  cols = (0...res.nfields).map { |i| "#{res.fname(i)}:#{res.ftype(i)}:#{res.fformat(i)}" }
  result "exec_params/binary##{run}", "[#{cols.join(',')}] #{out.join(' ')} status=#{res.cmd_status.inspect}"
  expect_last(conn, "exec_params/binary##{run}", run == 1 ? 'miss-filled' : 'hit')
end
# The same statement in text format is another entry.
res = conn.exec_params(bin_sql, bin_params, 0)
res.type_map = TEXT_MAP
result 'exec_params/binary-as-text', fmt_result(res)
expect_last(conn, 'exec_params/binary-as-text', 'miss-filled')

# --- an error is not cached; the connection stays usable.
2.times do |i|
  begin
    conn.exec_params('SELECT id, 10 / (id - $1) FROM items WHERE id <= $2 ORDER BY id', [2, 3])
    result "error##{i + 1}", 'no error'
  rescue PG::Error => e
    result "error##{i + 1}", "#{e.class} #{e.result&.error_field(PG::PG_DIAG_SQLSTATE)}"
  end
  expect_last(conn, "error##{i + 1}", 'miss-not-filled')
end
result 'error/usable', conn.exec('SELECT 1 AS one').getvalue(0, 0)

# --- prepare / exec_prepared, reused.
conn.prepare('item_by_id', 'SELECT id, name, price, note, tags FROM items WHERE id = $1')
conn.prepare('item_by_id_bin', 'SELECT id, name, at, data FROM items WHERE id = $1')
(1..2).each do |round|
  [12, 13, 14].each do |id|
    res = conn.exec_prepared('item_by_id', [id])
    res.type_map = TEXT_MAP
    result "prepared/#{id}##{round}", fmt_result(res)
    expect_last(conn, "prepared/#{id}##{round}", round == 1 ? 'miss-filled' : 'hit')
    res = conn.exec_prepared('item_by_id_bin', [id], 1)
    res.type_map = BINARY_MAP
    result "prepared-binary/#{id}##{round}", fmt_result(res)
    expect_last(conn, "prepared-binary/#{id}##{round}", round == 1 ? 'miss-filled' : 'hit')
  end
end
d = conn.describe_prepared('item_by_id')
result 'prepared/describe', "params=#{(0...d.nparams).map { |i| d.paramtype(i) }.join(',')} fields=#{(0...d.nfields).map { |i| "#{d.fname(i)}:#{d.ftype(i)}" }.join(',')}"

# A write through the proxy; the next read sees it and is not a hit.
r = conn.exec_params('UPDATE items SET note = $1, price = price + $2 WHERE id = $3', ['written by ruby', '0.5', 13])
result 'write/update', r.cmd_status
res = conn.exec_prepared('item_by_id', [13])
res.type_map = TEXT_MAP
result 'write/after', fmt_result(res)
expect_last(conn, 'write/after', *AFTER_WRITE)
res = conn.exec_prepared('item_by_id', [12])
res.type_map = TEXT_MAP
result 'write/other-row', fmt_result(res)
expect_last(conn, 'write/other-row', *AFTER_WRITE)
wait_wal(conn, 'write')
2.times { |i| result "write/after##{i + 2}", fmt_result(conn.exec_prepared('item_by_id', [13]).tap { |x| x.type_map = TEXT_MAP }) }
expect_last(conn, 'write/after-cached', 'hit')

# --- COPY FROM STDIN, then the rows; COPY TO STDOUT.
summary = 'SELECT count(*) AS n, sum(amount) AS total, min(at) AS first, max(label) AS last FROM copied'
2.times do |i|
  res = conn.exec(summary)
  res.type_map = TEXT_MAP
  result "copy/before##{i + 1}", fmt_result(res)
end
expect_last(conn, 'copy/before#2', 'hit')
enco = PG::TextEncoder::CopyRow.new
COPY_BASE = Time.new(2023, 12, 31, 22, 30, Rational(987_654, 1_000_000), '+01:00')
copy_res = conn.copy_data('COPY copied (id, label, amount, at, data, nums) FROM STDIN', enco) do
  (1..300).each do |i|
    label = (i % 7).zero? ? nil : format("row %03d, with \"quotes\", a \\ backslash and a\ttab", i)
    at = (COPY_BASE + i * 60).strftime('%Y-%m-%d %H:%M:%S.%6N%:z')
    data = (i % 5).zero? ? nil : '\\x' + [i & 0xff, i >> 8, 0, 255].pack('C*').unpack1('H*')
    conn.put_copy_data([i, label, format('%d.%03d', i * 3, i), at, data, "{#{i},#{-i},0}"])
  end
end
result 'copy/from', copy_res.cmd_status.inspect
res = conn.exec(summary)
res.type_map = TEXT_MAP
result 'copy/after', fmt_result(res)
expect_last(conn, 'copy/after', *AFTER_WRITE)
some = 'SELECT id, label, amount, at, data, nums FROM copied WHERE id = ANY($1::int4[]) ORDER BY id'
res = conn.exec_params(some, ['{1,5,7,150,300}'])
res.type_map = TEXT_MAP
result 'copy/rows', fmt_result(res)
wait_wal(conn, 'copy')
(2..3).each do |run|
  res = conn.exec_params(some, ['{1,5,7,150,300}'])
  res.type_map = TEXT_MAP
  result "copy/rows##{run}", fmt_result(res)
end
expect_last(conn, 'copy/rows#3', 'hit')

deco = PG::TextDecoder::CopyRow.new
lines = []
conn.copy_data('COPY (SELECT id, label, amount, at, data, nums FROM copied WHERE id % 100 IN (0, 7) ORDER BY id) TO STDOUT', deco) do
  while (row = conn.get_copy_data)
    lines << row
  end
end
lines.each_with_index { |row, i| result "copy/to/#{i}", row.map { |v| v.nil? ? 'NULL' : v.inspect }.join(' ') }
raw = +''
conn.copy_data('COPY items (id, name, tags, doc) TO STDOUT WITH (FORMAT csv, HEADER)') do
  while (chunk = conn.get_copy_data)
    raw << chunk
  end
end
csv = raw.split("\n")
result 'copy/to-csv', "#{csv.size} lines, first #{csv[0].inspect}, second #{csv[1].inspect}"
result 'copy/usable', conn.exec('SELECT 2 AS two').getvalue(0, 0)

# --- a transaction: READ COMMITTED reads hit until the block's first write;
# after it they go upstream and see the write; the commit invalidates; a
# rolled-back write leaves the cache as it was.
tx_sql = 'SELECT id, name, price, note FROM items WHERE id = $1'
read = lambda do |label|
  res = conn.exec_params(tx_sql, [21])
  res.type_map = TEXT_MAP
  result label, fmt_result(res)
end
read.call('tx/before#1')
expect_last(conn, 'tx/before#1', 'miss-filled')
read.call('tx/before#2')
expect_last(conn, 'tx/before#2', 'hit')
conn.transaction do |c|
  read.call('tx/in-block')
  expect_last(c, 'tx/in-block', 'hit')
  result 'tx/update', c.exec_params("UPDATE items SET name = 'renamed in tx', price = price * 2 WHERE id = $1", [21]).cmd_status
  read.call('tx/in-block-after-write')
  expect_last(c, 'tx/in-block-after-write', 'bypass')
  result 'tx/status', c.transaction_status == PG::PQTRANS_INTRANS ? 'in transaction' : c.transaction_status.to_s
end
read.call('tx/after-commit')
expect_last(conn, 'tx/after-commit', *AFTER_WRITE)
wait_wal(conn, 'tx')
read.call('tx/after-commit#2')
read.call('tx/after-commit#3')
expect_last(conn, 'tx/after-commit#3', 'hit')
conn.exec('BEGIN')
conn.exec_params("UPDATE items SET name = 'rolled back' WHERE id = $1", [21])
read.call('tx/rollback-in-block')
conn.exec('ROLLBACK')
read.call('tx/after-rollback')
expect_last(conn, 'tx/after-rollback', 'hit')

# A failed transaction: the error, then ROLLBACK; reads are served again.
conn.exec('BEGIN')
begin
  conn.exec('SELECT 1 / 0')
rescue PG::Error => e
  result 'tx/failed', e.class.to_s
end
begin
  conn.exec_params(tx_sql, [21])
rescue PG::Error => e
  result 'tx/failed-read', e.class.to_s
end
conn.exec('ROLLBACK')
read.call('tx/after-failed')
expect_last(conn, 'tx/after-failed', 'hit')

conn.close
$stderr.puts format('done in %.3fs', Process.clock_gettime(Process::CLOCK_MONOTONIC) - STARTED)
