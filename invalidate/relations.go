package invalidate

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pgmemo/pgmemo/query"
)

// Reasons a resolution is not cacheable. Each prefixes a relation or function
// name: "unknown_relation:orders".
const (
	// ReasonUnknownRelation: the name resolves to no relation.
	ReasonUnknownRelation = "unknown_relation:"
	// ReasonTempRelation: the relation is temporary (or qualified with
	// pg_temp, or created as temporary by the statement), or a temporary relation
	// of the same name exists in some session and could shadow it in the
	// client's session, which the service connection cannot see.
	ReasonTempRelation = "temp_relation:"
	// ReasonUnloggedRelation: the relation is unlogged, so its changes are
	// not in the WAL.
	ReasonUnloggedRelation = "unlogged_relation:"
	// ReasonForeignTable: the rows live on another server.
	ReasonForeignTable = "foreign_table:"
	// ReasonSequence: a sequence changes without a write the proxy could see.
	ReasonSequence = "sequence:"
	// ReasonSystemCatalog: a relation of pg_catalog, information_schema or
	// pg_toast, changed by DDL.
	ReasonSystemCatalog = "system_catalog:"
	// ReasonVolatileFunction: a view's definition, or the statement, calls a
	// VOLATILE function. For views, user functions are found through
	// pg_depend; builtins, which pg_depend does not record, by running
	// query.Analyze on pg_get_viewdef, whose other reasons (time_function:,
	// session_function:, system_catalog:...) are reported as they come.
	ReasonVolatileFunction = "volatile_function:"
	// ReasonStableFunction: a view's definition, or the statement, calls a
	// user-defined STABLE function.
	ReasonStableFunction = "stable_function:"
	// ReasonRowSecurity: the relation has row-level security enabled and a
	// policy for reads whose expression depends on more than the role
	// (current_user and the like, which the cache key holds): another
	// table, a function that is not IMMUTABLE, a setting, the time...
	// None of that is tracked, so the relation's rows are not cached.
	ReasonRowSecurity = "row_level_security:"
	// ReasonSchemaUsage: an unqualified name, and a schema of the
	// search_path exists that the service role may not use: the name may
	// resolve there for the client and elsewhere for the proxy, which would
	// then watch the wrong relation. Grant the service role USAGE on it.
	ReasonSchemaUsage = "schema_not_usable_by_service_role:"
	// ReasonMaterializedView: a materialized view in a database without
	// pgmemo's DDL hook (DDLHookSQL): a REFRESH made without the proxy is
	// not on the replication stream (materialized views are not published)
	// and nothing else reports it.
	ReasonMaterializedView = "materialized_view_without_ddl_hook:"
	// ReasonUnknownFunction: no function of that name takes that many
	// arguments.
	ReasonUnknownFunction = "unknown_function:"
	// ReasonTypeFunction: a column of a relation read has a user-defined
	// type (or a domain, array, range or composite over one) whose input,
	// output, receive or send function is not IMMUTABLE: a literal
	// compared with the column runs the input function, every value read
	// runs the output function, without a function call in the text.
	ReasonTypeFunction = "type_io_function:"
	// ReasonImplicitCast: an implicit or assignment cast from or to the
	// user-defined type of a column read runs a user function that is not
	// IMMUTABLE; the server may apply it without a cast in the text.
	ReasonImplicitCast = "implicit_cast:"
)

// Relation kinds (pg_class.relkind) and persistences (relpersistence).
const (
	KindTable            = 'r'
	KindPartitionedTable = 'p'
	KindView             = 'v'
	KindMaterializedView = 'm'
	KindForeignTable     = 'f'
	KindSequence         = 'S'

	PersistencePermanent = 'p'
	PersistenceUnlogged  = 'u'
	PersistenceTemporary = 't'
)

// Resolved is one relation found in the catalog.
type Resolved struct {
	// Relation is the name as the statement gave it.
	Relation query.Relation
	// Found is false when the name resolves to nothing; the other fields
	// are then zero.
	Found       bool
	OID         uint32
	Schema      string
	Name        string
	Kind        byte // pg_class.relkind
	Persistence byte // pg_class.relpersistence
	RowSecurity bool // pg_class.relrowsecurity: row-level security is enabled
}

// Resolution is what ResolveRelations found. It is shared with the cache:
// callers must not modify its slices.
type Resolution struct {
	// Relations holds one entry per relation asked about, in order.
	Relations []Resolved
	// OIDs lists, sorted and without duplicates, every relation whose
	// change must invalidate the result: the relations themselves, the base
	// relations of views (recursively) and every descendant of partitioned
	// tables and inheritance parents (unless the statement used ONLY).
	OIDs []uint32
	// Cacheable is false when the result must not be cached; Reason then
	// says why (the first problem found, see the Reason constants).
	Cacheable bool
	Reason    string
	// Effects reports that writing one of the OIDs may write relations the
	// statement does not name: a user trigger, a rule other than a view's,
	// or a foreign key referencing it with ON DELETE/UPDATE CASCADE, SET
	// NULL or SET DEFAULT. A proxy that invalidates by statement cannot
	// tell what such a write changed.
	Effects bool
	// Code reports that writing one of the OIDs may run user code: Effects
	// (a trigger or rule runs functions, and a cascade fires the triggers
	// of the tables it writes), or a column default, CHECK constraint or
	// domain constraint that calls a user-defined function. Such code may
	// change the session (set_config, SET ROLE, temporary tables) as a DO
	// block can.
	Code bool
}

// ResolveRelations resolves rels as a session whose search_path is searchPath
// would, and expands them to every relation whose change must invalidate a
// result read from them. Answers are cached by (searchPath, rels).
func (c *Catalog) ResolveRelations(ctx context.Context, searchPath string, rels []query.Relation) (Resolution, error) {
	key := relationsKey(searchPath, rels)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	if r, ok := c.rels.Get(key); ok {
		c.hits++
		return r, nil
	}
	c.misses++
	var res Resolution
	err := c.tx(ctx, searchPath, func(s *session) error {
		var err error
		res, err = resolve(s, rels)
		return err
	})
	if err != nil {
		return Resolution{}, err
	}
	c.rels.Add(key, res)
	return res, nil
}

func relationsKey(searchPath string, rels []query.Relation) string {
	var b strings.Builder
	b.WriteString(searchPath)
	for _, r := range rels {
		b.WriteByte(0)
		b.WriteString(r.Schema)
		b.WriteByte(1)
		b.WriteString(r.Name)
		if r.Only {
			b.WriteByte(2)
		}
		if r.Temp {
			b.WriteByte(3)
		}
	}
	return b.String()
}

const lookupSQL = `SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass($1::text)`

// unusableSchemaSQL finds a schema of the search_path that exists but that
// the service role may not use (lookups then silently skip it).
const unusableSchemaSQL = `SELECT n.nspname
FROM pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.current_setting('search_path'), ',')) AS p(s)
JOIN pg_catalog.pg_namespace n ON n.nspname = pg_catalog.btrim(p.s, ' "')
WHERE NOT pg_catalog.has_schema_privilege(n.oid, 'USAGE')
LIMIT 1`

const tempShadowSQL = `SELECT EXISTS (SELECT 1
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname LIKE 'pg\_temp\_%' AND c.relname = $1::text)`

// expandSQL walks from a relation to the relations its view rules read
// (pg_rewrite -> pg_depend) and to its inheritance children and partitions
// (pg_inherits), recursively. $2 = true stops at the root's children (ONLY).
const expandSQL = `WITH RECURSIVE deps(oid, root) AS (
  SELECT $1::oid, true
  UNION
  SELECT x.oid, false FROM deps CROSS JOIN LATERAL (
    SELECT d.refobjid AS oid
    FROM pg_catalog.pg_rewrite rw
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
    WHERE rw.ev_class = deps.oid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> deps.oid
    UNION ALL
    SELECT i.inhrelid FROM pg_catalog.pg_inherits i
    WHERE i.inhparent = deps.oid AND NOT (deps.root AND $2::bool)
  ) x
)
SELECT DISTINCT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity
FROM deps JOIN pg_catalog.pg_class c ON c.oid = deps.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind NOT IN ('i', 'I', 'c', 't') AND c.oid <> $1::oid
ORDER BY 1`

// viewSQL returns a view's definition and the first non-immutable function
// its rule depends on (pinned builtins have no pg_depend rows: the
// definition is analyzed for those).
const viewSQL = `SELECT pg_catalog.pg_get_viewdef($1::oid), p.proname, p.provolatile
FROM (SELECT 1) one LEFT JOIN LATERAL (
  SELECT p.proname, p.provolatile
  FROM pg_catalog.pg_rewrite rw
  JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = rw.oid
  JOIN pg_catalog.pg_proc p ON d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND p.oid = d.refobjid
  WHERE rw.ev_class = $1::oid AND p.provolatile <> 'i'
  ORDER BY p.provolatile DESC, p.proname
  LIMIT 1) p ON true`

func tempSchema(s string) bool {
	return s == "pg_temp" || strings.HasPrefix(s, "pg_temp_") || strings.HasPrefix(s, "pg_toast_temp_")
}

func resolve(s *session, rels []query.Relation) (Resolution, error) {
	res := Resolution{Relations: make([]Resolved, 0, len(rels)), Cacheable: true}
	fail := func(reason string) {
		if res.Cacheable {
			res.Cacheable, res.Reason = false, reason
		}
	}
	seen := map[uint32]bool{}
	if slices.ContainsFunc(rels, func(r query.Relation) bool { return r.Schema == "" }) {
		rows, err := s.query("schema_usage", unusableSchemaSQL)
		if err != nil {
			return Resolution{}, err
		}
		if len(rows) > 0 {
			fail(ReasonSchemaUsage + string(rows[0][0]))
		}
	}
	for _, rel := range rels {
		r := Resolved{Relation: rel}
		name := rel.String()
		if tempSchema(rel.Schema) || rel.Temp {
			res.Relations = append(res.Relations, r)
			fail(ReasonTempRelation + name)
			continue
		}
		if rel.Schema == "" {
			rows, err := s.query("resolve_relation", tempShadowSQL, rel.Name)
			if err != nil {
				return Resolution{}, err
			}
			if len(rows) == 1 && string(rows[0][0]) == "t" {
				fail(ReasonTempRelation + name)
			}
		}
		qname := quoteIdent(rel.Name)
		if rel.Schema != "" {
			qname = quoteIdent(rel.Schema) + "." + qname
		}
		rows, err := s.query("resolve_relation", lookupSQL, qname)
		if err != nil {
			return Resolution{}, err
		}
		if len(rows) == 0 {
			res.Relations = append(res.Relations, r)
			fail(ReasonUnknownRelation + name)
			continue
		}
		r.Found = true
		r.OID, r.Schema, r.Name, r.Kind, r.Persistence = parseOID(rows[0][0]), string(rows[0][1]), string(rows[0][2]), byteOf(rows[0][3]), byteOf(rows[0][4])
		r.RowSecurity = string(rows[0][5]) == "t"
		res.Relations = append(res.Relations, r)
		if reason := relationReason(r, name); reason != "" {
			fail(reason)
		}
		if !seen[r.OID] {
			seen[r.OID] = true
			if err := checkDefinition(s, r, name, fail); err != nil {
				return Resolution{}, err
			}
		}
		only := "false"
		if rel.Only {
			only = "true"
		}
		rows, err = s.query("expand_relation", expandSQL, strconv.FormatUint(uint64(r.OID), 10), only)
		if err != nil {
			return Resolution{}, err
		}
		for _, row := range rows {
			d := Resolved{Found: true, OID: parseOID(row[0]), Schema: string(row[1]), Name: string(row[2]), Kind: byteOf(row[3]), Persistence: byteOf(row[4]),
				RowSecurity: string(row[5]) == "t"}
			if seen[d.OID] {
				continue
			}
			seen[d.OID] = true
			if reason := relationReason(d, d.Schema+"."+d.Name); reason != "" {
				fail(reason)
			}
			if err := checkDefinition(s, d, d.Schema+"."+d.Name, fail); err != nil {
				return Resolution{}, err
			}
		}
	}
	res.OIDs = make([]uint32, 0, len(seen))
	for oid := range seen {
		res.OIDs = append(res.OIDs, oid)
	}
	slices.Sort(res.OIDs)
	if len(res.OIDs) > 0 {
		rows, err := s.query("column_types", typeCodeSQL, oidArray(res.OIDs))
		if err != nil {
			return Resolution{}, err
		}
		for _, row := range rows {
			reason := ReasonTypeFunction
			if string(row[1]) == "cast" {
				reason = ReasonImplicitCast
			}
			fail(reason + string(row[0]))
		}
		rows, err = s.query("write_effects", effectsSQL, oidArray(res.OIDs))
		if err != nil {
			return Resolution{}, err
		}
		res.Effects = len(rows) == 1 && string(rows[0][0]) == "t"
		res.Code = res.Effects || len(rows) == 1 && string(rows[0][1]) == "t"
	}
	return res, nil
}

// typeCodeSQL finds, for the columns of the relations $1, the first type
// (through domains, arrays, ranges and composites) whose I/O functions
// include a user function that is not IMMUTABLE, or else the first implicit
// or assignment cast from or to one of those types that is user-defined
// and that runs such a function (16384 is FirstNormalObjectId). A cast
// between two builtin types (which only a superuser can create) is not
// looked at: it would concern every table.
const typeCodeSQL = `WITH RECURSIVE cols(t) AS (
  SELECT a.atttypid FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
  UNION
  SELECT x.t FROM cols JOIN pg_catalog.pg_type ty ON ty.oid = cols.t
  CROSS JOIN LATERAL (
    SELECT ty.typbasetype WHERE ty.typbasetype <> 0
    UNION ALL SELECT ty.typelem WHERE ty.typelem <> 0
    UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = ty.oid
    UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
      WHERE ty.typtype = 'c' AND a.attrelid = ty.typrelid AND a.attnum > 0 AND NOT a.attisdropped
  ) x(t)
), found AS (
  SELECT ty.oid::pg_catalog.regtype::pg_catalog.text AS what, 'io' AS kind
  FROM cols JOIN pg_catalog.pg_type ty ON ty.oid = cols.t
  WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_proc f
    WHERE f.oid IN (ty.typinput, ty.typoutput, ty.typreceive, ty.typsend) AND f.oid >= 16384 AND f.provolatile <> 'i')
  UNION ALL
  SELECT c.castsource::pg_catalog.regtype::pg_catalog.text || '->' || c.casttarget::pg_catalog.regtype::pg_catalog.text, 'cast'
  FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_proc f ON f.oid = c.castfunc
  WHERE c.castcontext IN ('i', 'a') AND f.oid >= 16384 AND f.provolatile <> 'i'
    AND (c.castsource >= 16384 AND c.castsource IN (SELECT t FROM cols)
      OR c.casttarget >= 16384 AND c.casttarget IN (SELECT t FROM cols))
)
SELECT what, kind FROM found ORDER BY kind DESC, what LIMIT 1`

// effectsSQL tells whether writing any of the relations $1 may write others,
// and whether it may run user functions otherwise (column defaults,
// constraints, row-level policies, a domain's default; 16384 is
// FirstNormalObjectId: OIDs below it are the system's).
const effectsSQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
    WHERE tgrelid = ANY ($1::oid[]) AND NOT tgisinternal)
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite
    WHERE ev_class = ANY ($1::oid[]) AND rulename <> '_RETURN')
  OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint
    WHERE contype = 'f' AND confrelid = ANY ($1::oid[])
      AND (confdeltype IN ('c', 'n', 'd') OR confupdtype IN ('c', 'n', 'd'))),
  EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.refobjid >= 16384
      AND (d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
          AND d.objid IN (SELECT a.oid FROM pg_catalog.pg_attrdef a WHERE a.adrelid = ANY ($1::oid[]))
        OR d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass
          AND d.objid IN (SELECT p.oid FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY ($1::oid[]))
        OR d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
          AND d.objid IN (SELECT a.atttypid FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped)
        OR d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
          AND d.objid IN (SELECT c.oid FROM pg_catalog.pg_constraint c
            WHERE c.conrelid = ANY ($1::oid[]) OR c.contypid IN (SELECT a.atttypid FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped))))`

func oidArray(oids []uint32) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, o := range oids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(o), 10))
	}
	b.WriteByte('}')
	return b.String()
}

// relationReason says why results read from r must not be cached, "" if
// nothing does; name is how to report it.
func relationReason(r Resolved, name string) string {
	switch {
	case r.Persistence == PersistenceTemporary || tempSchema(r.Schema):
		return ReasonTempRelation + name
	case r.Schema == "pg_catalog" || r.Schema == "information_schema" || r.Schema == "pg_toast":
		return ReasonSystemCatalog + name
	case r.Persistence == PersistenceUnlogged:
		return ReasonUnloggedRelation + name
	case r.Kind == KindForeignTable:
		return ReasonForeignTable + name
	case r.Kind == KindSequence:
		return ReasonSequence + name
	}
	return ""
}

// checkDefinition checks what a relation's rows depend on beyond its own
// contents: a view's definition, a table's row-level security policies.
func checkDefinition(s *session, r Resolved, name string, fail func(string)) error {
	if r.Kind == KindView {
		if err := checkView(s, r.OID, fail); err != nil {
			return err
		}
	}
	if r.Kind == KindMaterializedView {
		rows, err := s.query("ddl_hook", ddlHookInstalledSQL)
		if err != nil {
			return err
		}
		if len(rows) != 1 || string(rows[0][0]) != "t" {
			fail(ReasonMaterializedView + name)
		}
	}
	if r.RowSecurity {
		return checkPolicies(s, r.OID, name, fail)
	}
	return nil
}

// ddlHookInstalledSQL tells whether DDLHookSQL's event trigger for
// ddl_command_end (which REFRESH MATERIALIZED VIEW fires) is installed and
// enabled in the database.
const ddlHookInstalledSQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger
WHERE evtname = 'pgmemo_ddl_end' AND evtevent = 'ddl_command_end' AND evtenabled <> 'D')`

// policySQL lists the read policies of a relation ($1): the USING
// expression, and whether it depends on another relation or on a user
// function that is not IMMUTABLE (pinned builtins have no pg_depend rows:
// the expression is analyzed for those).
const policySQL = `SELECT pg_catalog.pg_get_expr(p.polqual, p.polrelid),
  EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.objid = p.oid
      AND (d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> p.polrelid
        OR d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
          AND EXISTS (SELECT 1 FROM pg_catalog.pg_proc f WHERE f.oid = d.refobjid AND f.provolatile <> 'i')))
FROM pg_catalog.pg_policy p
WHERE p.polrelid = $1::oid AND p.polcmd IN ('r', '*')`

// roleFunction matches the SQL functions naming the current role as
// pg_get_expr prints them; the cache key holds their value.
var roleFunction = regexp.MustCompile(`\b(CURRENT_USER|SESSION_USER|CURRENT_ROLE)\b`)

// checkPolicies reports, through fail, a relation with row-level security
// whose read policies depend on anything but its rows and the role (with no
// policy at all, only the owner and BYPASSRLS roles see rows: that too
// depends on the role only). Memberships a policy's TO list or
// pg_has_role checks are role changes, which invalidate everything when
// made through the proxy.
func checkPolicies(s *session, oid uint32, name string, fail func(string)) error {
	rows, err := s.query("row_security", policySQL, strconv.FormatUint(uint64(oid), 10))
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row[0] == nil || string(row[1]) == "t" {
			fail(ReasonRowSecurity + name)
			return nil
		}
		// The role functions become a constant of the same type; inside a
		// string literal the replacement keeps the literal valid.
		expr := roleFunction.ReplaceAllString(string(row[0]), "NULL::name")
		if a := query.Analyze("SELECT 1 WHERE " + expr); !a.Cacheable || len(a.Relations) > 0 || len(a.Functions) > 0 {
			fail(ReasonRowSecurity + name)
			return nil
		}
	}
	return nil
}

// checkView reports, through fail, a view whose definition calls a volatile
// or user STABLE function, or anything else the query package would not
// cache (now(), current_user...).
func checkView(s *session, oid uint32, fail func(string)) error {
	rows, err := s.query("view_functions", viewSQL, strconv.FormatUint(uint64(oid), 10))
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	row := rows[0]
	switch byteOf(row[2]) {
	case 'v':
		fail(ReasonVolatileFunction + string(row[1]))
	case 's':
		fail(ReasonStableFunction + string(row[1]))
	}
	if a := query.Analyze(string(row[0])); !a.Cacheable && a.Reason != query.ReasonNoCacheHint {
		fail(a.Reason)
	}
	return nil
}

// RelationNames returns the qualified names (as regclass prints them with an
// empty search_path) of the relations oids that still exist.
func (c *Catalog) RelationNames(ctx context.Context, oids []uint32) (map[uint32]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	names := map[uint32]string{}
	err := c.tx(ctx, "", func(s *session) error {
		rows, err := s.query("relation_names", "SELECT oid, oid::pg_catalog.regclass::text FROM pg_catalog.pg_class WHERE oid = ANY ($1::oid[])", oidArray(oids))
		if err != nil {
			return err
		}
		for _, r := range rows {
			names[parseOID(r[0])] = string(r[1])
		}
		return nil
	})
	return names, err
}
