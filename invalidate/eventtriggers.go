package invalidate

import "context"

// userEventTriggersSQL tells whether the database has an enabled event
// trigger on DDL (ddl_command_start, ddl_command_end, sql_drop,
// table_rewrite) that is not pgmemo's own hook (DDLHookSQL).
const userEventTriggersSQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
WHERE e.evtenabled <> 'D' AND e.evtevent <> 'login'
  AND NOT (p.proname = 'pgmemo_ddl_hook' AND p.pronamespace = 'public'::pg_catalog.regnamespace))`

// UserEventTriggers reports whether DDL in the database fires an event
// trigger of the user's: code that runs with the DDL and that the proxy
// cannot see, which may change the session (set_config, a temporary table)
// as a DO block may. It is not cached; a change made elsewhere shows in
// AccessDigest.
func (c *Catalog) UserEventTriggers(ctx context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	found := false
	err := c.tx(ctx, "", func(s *session) error {
		rows, err := s.query("event_triggers", userEventTriggersSQL)
		if err != nil {
			return err
		}
		found = len(rows) == 1 && string(rows[0][0]) == "t"
		return nil
	})
	return found, err
}
