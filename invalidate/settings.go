package invalidate

import (
	"context"
	"slices"
)

// sessionSettingsSQL lists the settings a session (or code it runs) may
// change and that any role may read: those of context user, two of context
// superuser that bear on what a session reads or writes, and role and
// session_authorization, which pg_settings does not list. The other
// superuser settings are left out: some (dynamic_library_path,
// session_preload_libraries...) only a superuser may read, so that a probe
// naming them fails for every other role, and none shapes a query's result.
const sessionSettingsSQL = `SELECT name FROM pg_catalog.pg_settings
WHERE context = 'user' OR name IN ('lo_compat_privileges', 'session_replication_role')
UNION SELECT 'role' UNION SELECT 'session_authorization'
ORDER BY 1`

// SessionSettings returns the names of the settings a session may change
// itself, sorted: what code the proxy cannot see (a DO block, a volatile
// function, a trigger) may have changed, for a check of the session
// afterwards. It is not cached.
func (c *Catalog) SessionSettings(ctx context.Context) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	var names []string
	err := c.tx(ctx, "", func(s *session) error {
		rows, err := s.query("session_settings", sessionSettingsSQL)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if r[0] != nil {
				names = append(names, string(r[0]))
			}
		}
		return nil
	})
	slices.Sort(names) // byte order, whatever the database's collation
	return names, err
}
