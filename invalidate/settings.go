package invalidate

import (
	"context"
	"slices"
)

// sessionSettingsSQL lists the settings a session (or code it runs) may
// change: those of context user and superuser. role and
// session_authorization are not listed by pg_settings and are added.
const sessionSettingsSQL = `SELECT name FROM pg_catalog.pg_settings
WHERE context IN ('user', 'superuser')
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
