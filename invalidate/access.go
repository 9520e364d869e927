package invalidate

import "context"

// accessSQL digests everything besides a relation's rows that decides which
// rows a role may read: roles and the attributes that matter (superuser,
// inheritance, BYPASSRLS; not their settings, which sessions pick up when
// they start and the cache key holds), memberships, table, column and schema privileges, and
// row-level security (the flags and every policy). None of it is in the
// logical replication stream: roles and memberships live in shared catalogs,
// and event triggers do not fire for role changes.
//
// It also digests the event triggers (CREATE EVENT TRIGGER fires none): the
// plans of DDL depend on whether the user has some (UserEventTriggers).
//
// It ends with the time the server last read its configuration files: a
// reload (pg_reload_conf(), SIGHUP) may change the server-wide value of a
// setting that shapes results without the session reporting it
// (default_text_search_config, extra_float_digits, bytea_output, lc_monetary,
// transform_null_equals...), which the cache key holds only when a session
// sets it itself.
const accessSQL = `SELECT pg_catalog.md5(
  coalesce((SELECT pg_catalog.string_agg(r.oid::text || ':' || r.rolname || r.rolsuper::text || r.rolinherit::text || r.rolbypassrls::text, ',' ORDER BY r.oid) FROM pg_catalog.pg_roles r), '') || '|' ||
  coalesce((SELECT pg_catalog.string_agg(m::text, ',' ORDER BY m::text) FROM pg_catalog.pg_auth_members m), '') || '|' ||
  coalesce((SELECT pg_catalog.string_agg(c.oid::text || ':' || c.relrowsecurity::text || c.relforcerowsecurity::text || coalesce(c.relacl::text, ''), ',' ORDER BY c.oid)
    FROM pg_catalog.pg_class c WHERE c.relacl IS NOT NULL OR c.relrowsecurity), '') || '|' ||
  coalesce((SELECT pg_catalog.string_agg(a.attrelid::text || '.' || a.attnum::text || ':' || a.attacl::text, ',' ORDER BY a.attrelid, a.attnum)
    FROM pg_catalog.pg_attribute a WHERE a.attacl IS NOT NULL), '') || '|' ||
  coalesce((SELECT pg_catalog.string_agg(n.oid::text || ':' || coalesce(n.nspacl::text, ''), ',' ORDER BY n.oid) FROM pg_catalog.pg_namespace n), '') || '|' ||
  coalesce((SELECT pg_catalog.string_agg(p.oid::text || ':' || p.polrelid::text || p.polcmd::text || p.polpermissive::text || p.polroles::text || ':' ||
      coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), ''), ',' ORDER BY p.oid) FROM pg_catalog.pg_policy p), '') || '|' ||
  coalesce((SELECT pg_catalog.string_agg(e.oid::text || ':' || e.evtevent || e.evtenabled::text || e.evtfoid::text, ',' ORDER BY e.oid)
    FROM pg_catalog.pg_event_trigger e), '') || '|' ||
  pg_catalog.pg_conf_load_time()::text)`

// AccessDigest returns a digest of the database's access rules: roles, their
// attributes and memberships, privileges on tables, columns and schemas, and
// row-level security policies, and the server's last configuration reload.
// A caller that polls it and sees it change knows that some role may now
// read different rows than before, or rows shaped by other settings, whoever
// made the change (GRANT, REVOKE, ALTER ROLE, DROP ROLE, CREATE POLICY...
// run without the proxy, or a reload). It is not cached.
func (c *Catalog) AccessDigest(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	var digest string
	err := c.tx(ctx, "", func(s *session) error {
		rows, err := s.query("access_digest", accessSQL)
		if err != nil {
			return err
		}
		if len(rows) == 1 {
			digest = string(rows[0][0])
		}
		return nil
	})
	return digest, err
}
