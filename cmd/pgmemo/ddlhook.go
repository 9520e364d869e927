package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgmemo/pgmemo/invalidate"
)

// installDDLHook runs `pgmemo install-ddl-hook`: it installs
// invalidate.DDLHookSQL in the --upstream URL's database, or in each database
// of --database.
func installDDLHook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgmemo install-ddl-hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	upstream := fs.String("upstream", "", "PostgreSQL server, as a postgres:// URL (a superuser: event triggers need one)")
	dbs := fs.String("database", "", "comma-separated databases to install into (default: the URL's database)")
	if err := parseFlags(fs, args, os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if *upstream == "" {
		return errors.New("--upstream (or PGMEMO_UPSTREAM) is required")
	}
	cfg, err := pgconn.ParseConfig(*upstream)
	if err != nil {
		return err
	}
	targets := []string{cfg.Database}
	if *dbs != "" {
		targets = strings.Split(*dbs, ",")
	}
	for _, db := range targets {
		c := cfg.Copy()
		c.Database = strings.TrimSpace(db)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		conn, err := pgconn.ConnectConfig(cctx, c)
		if err != nil {
			cancel()
			return fmt.Errorf("database %s: %w", c.Database, err)
		}
		_, err = conn.Exec(cctx, invalidate.DDLHookSQL).ReadAll()
		conn.Close(context.Background())
		cancel()
		if err != nil {
			return fmt.Errorf("database %s: installing the DDL hook: %w", c.Database, err)
		}
		fmt.Fprintf(stdout, "installed the DDL hook in database %s\n", c.Database)
	}
	return nil
}
