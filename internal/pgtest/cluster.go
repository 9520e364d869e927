package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Login roles every cluster has, one per authentication method, with their passwords.
const (
	SuperUser     = "postgres" // trust
	TrustUser     = "pgmemo_trust"
	PasswordUser  = "pgmemo_password" // cleartext "password" method
	MD5User       = "pgmemo_md5"
	ScramUser     = "pgmemo_scram"
	ReplUser      = "pgmemo_repl" // REPLICATION, trust
	RolePassword  = "secret-pw"
	defaultDBName = "postgres"
)

// Options configures Start. The zero value is usable.
type Options struct {
	// BinDir holds initdb, pg_ctl and postgres; empty means FindBinDir.
	BinDir string
	// Port to listen on; 0 picks a free one.
	Port int
	// Settings are extra postgresql.conf lines ("name = value").
	Settings []string
	// TLSCertPEM and TLSKeyPEM, when both set, turn on ssl with this
	// certificate and key.
	TLSCertPEM, TLSKeyPEM []byte
	// HBA replaces the default pg_hba.conf lines when set.
	HBA []string
}

// Cluster is a running throwaway PostgreSQL server listening on 127.0.0.1.
type Cluster struct {
	BinDir  string
	Dir     string // holds data/, the socket and the log
	DataDir string
	Port    int
	Version string // server_version
	cred    *syscall.Credential
}

// Start runs initdb, configures the cluster and starts it with pg_ctl.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	bin := opts.BinDir
	if bin == "" {
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	reapOnce.Do(func() { reapOrphans(bin) })
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: temp dir: %w", err)
	}
	c = &Cluster{BinDir: bin, Dir: dir, DataDir: filepath.Join(dir, "data"), Port: opts.Port}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err = os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return c, fmt.Errorf("pgtest: %w", err)
	}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresCredential(); err != nil {
			return c, err
		}
		if err = os.Chown(dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return c, fmt.Errorf("pgtest: chown %s: %w", dir, err)
		}
	}
	if c.Port == 0 {
		if c.Port, err = freePort(); err != nil {
			return c, err
		}
	}
	if out, err := c.run(ctx, "initdb", "-D", c.DataDir, "-U", SuperUser, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return c, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		fmt.Sprintf("port = %d", c.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", dir),
		"wal_level = logical",
		"max_wal_senders = 20",
		"max_replication_slots = 20",
		"max_connections = 200",
		"fsync = off",
		"synchronous_commit = on", // as in production: the replication stream follows commits within a millisecond
		"full_page_writes = off",
		"shared_buffers = 128MB",
		"log_min_messages = warning",
	}
	if len(opts.TLSCertPEM) > 0 && len(opts.TLSKeyPEM) > 0 {
		for name, data := range map[string][]byte{"server.crt": opts.TLSCertPEM, "server.key": opts.TLSKeyPEM} {
			if err := c.writeOwned(filepath.Join(c.DataDir, name), data); err != nil {
				return c, err
			}
		}
		conf = append(conf, "ssl = on", "ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'")
	}
	conf = append(conf, opts.Settings...)
	if err := appendFile(filepath.Join(c.DataDir, "postgresql.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
		return c, err
	}
	hbaLines := opts.HBA
	if hbaLines == nil {
		hbaLines = defaultHBA
	}
	hba := strings.Join(hbaLines, "\n") + "\n"
	if err := c.writeOwned(filepath.Join(c.DataDir, "pg_hba.conf"), []byte(hba)); err != nil {
		return c, err
	}
	if err := c.start(ctx); err != nil {
		return c, err
	}
	if err := c.setup(ctx); err != nil {
		return c, err
	}
	return c, nil
}

// defaultHBA authenticates each test role with its own method over TCP.
var defaultHBA = []string{
	"local all all trust",
	"host all " + PasswordUser + " 127.0.0.1/32 password",
	"host all " + MD5User + " 127.0.0.1/32 md5",
	"host all " + ScramUser + " 127.0.0.1/32 scram-sha-256",
	"host all all 127.0.0.1/32 trust",
	"host replication all 127.0.0.1/32 trust",
}

// writeOwned writes a 0600 file owned by the server's user.
func (c *Cluster) writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	return nil
}

func (c *Cluster) start(ctx context.Context) error {
	logFile := filepath.Join(c.Dir, "server.log")
	if out, err := c.run(ctx, "pg_ctl", "-D", c.DataDir, "-l", logFile, "-w", "-t", "60", "-o", "-c listen_addresses=127.0.0.1", "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

// Restart stops the server (fast mode: sessions are terminated) and starts it again.
func (c *Cluster) Restart(ctx context.Context) error {
	if out, err := c.run(ctx, "pg_ctl", "-D", c.DataDir, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	return c.start(ctx)
}

func (c *Cluster) setup(ctx context.Context) error {
	stmts := []string{
		"CREATE ROLE " + TrustUser + " LOGIN",
		"CREATE ROLE " + ReplUser + " LOGIN REPLICATION",
		"SET password_encryption = 'scram-sha-256'",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", ScramUser, RolePassword),
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", PasswordUser, RolePassword),
		"SET password_encryption = 'md5'",
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", MD5User, RolePassword),
	}
	for _, r := range []string{TrustUser, ScramUser, PasswordUser, MD5User, ReplUser} {
		stmts = append(stmts, "GRANT ALL ON SCHEMA public TO "+r)
	}
	conn, err := c.Connect(ctx, defaultDBName)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s).ReadAll(); err != nil {
			return fmt.Errorf("pgtest: %s: %w", s, err)
		}
	}
	res, err := conn.Exec(ctx, "SHOW server_version").ReadAll()
	if err != nil {
		return fmt.Errorf("pgtest: server_version: %w", err)
	}
	c.Version = string(res[0].Rows[0][0])
	return nil
}

// URL returns a connection URL for user (empty means the superuser) and database
// (empty means postgres); password may be empty.
func (c *Cluster) URL(usr, password, db string) string {
	if usr == "" {
		usr = SuperUser
	}
	if db == "" {
		db = defaultDBName
	}
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/" + db}
	if password != "" {
		u.User = url.UserPassword(usr, password)
	} else {
		u.User = url.User(usr)
	}
	u.RawQuery = "sslmode=disable"
	return u.String()
}

// Connect opens a superuser connection to db.
func (c *Cluster) Connect(ctx context.Context, db string) (*Conn, error) {
	// The unix socket works whatever pg_hba.conf says about TCP.
	if db == "" {
		db = defaultDBName
	}
	pc, err := pgconn.Connect(ctx, fmt.Sprintf("host=%s port=%d user=%s dbname=%s", c.Dir, c.Port, SuperUser, db))
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect: %w", err)
	}
	return &Conn{pc}, nil
}

// Exec runs sql (one or more statements) as the superuser in db.
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql).ReadAll()
	return err
}

// CreateDatabase creates a fresh database owned by the superuser, readable and
// writable by every test role, and returns its name.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) error {
	for _, q := range []string{fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name), fmt.Sprintf(`CREATE DATABASE %q`, name)} {
		if err := c.Exec(ctx, defaultDBName, q); err != nil {
			return fmt.Errorf("pgtest: %s: %w", q, err)
		}
	}
	return c.Exec(ctx, name, "GRANT ALL ON SCHEMA public TO PUBLIC")
}

// Stop shuts the server down immediately and removes its directory.
func (c *Cluster) Stop() {
	if c == nil {
		return
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c.run(ctx, "pg_ctl", "-D", c.DataDir, "-m", "immediate", "-w", "stop")
		cancel()
	}
	os.RemoveAll(c.Dir)
}

// A cluster's directory is named dirPrefix* in the temp dir and holds, in
// ownerFile, the pid of the process that started it.
const (
	dirPrefix = "pgmemo-pg-"
	ownerFile = "owner.pid"
)

var reapOnce sync.Once

// reapOrphans stops and removes the clusters whose owner died without stopping
// them: a test binary killed, or ended by a test timeout, skips its cleanup and
// leaves a server running. A cluster whose owner is alive, whose owner cannot be
// told (another user's process), or whose directory has no owner file (still
// being made, or made by an older pgtest) is left alone.
func reapOrphans(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		c := &Cluster{BinDir: bin, Dir: dir, DataDir: filepath.Join(dir, "data")}
		if os.Geteuid() == 0 {
			c.cred, _ = postgresCredential()
		}
		c.Stop()
	}
}

// processExists reports whether pid names a running process, ours or another
// user's. A zombie (exited, not waited for: what a killed test binary becomes
// where nothing reaps orphans) does not count.
func processExists(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	// The state follows the command name, which is in parentheses.
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// ServerLog returns the server's log so far.
func (c *Cluster) ServerLog() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
	return string(b)
}

// Command returns an exec.Cmd for a binary of the cluster's bin directory (psql,
// pgbench...), run as the server's user when the process is root.
func (c *Cluster) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.BinDir, name)
	if _, err := os.Stat(path); err != nil {
		path = name
	}
	return exec.CommandContext(ctx, path, args...)
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// pg_ctl start leaves the postmaster running with our pipes inherited;
	// do not wait for them to close.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if err != nil && out.Len() == 0 {
		return nil, err
	}
	if err != nil || cmd.ProcessState.ExitCode() != 0 {
		return out.Bytes(), fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out.Bytes(), nil
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a 'postgres' user to run the server: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString(text)
	return err
}

// Conn is a superuser service connection.
type Conn struct{ *pgconn.PgConn }
