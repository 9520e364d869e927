// Package pgtest starts throwaway PostgreSQL clusters from the machine's server
// binaries: initdb and pg_ctl into a temporary directory, a free loopback port,
// wal_level=logical, and login roles for each password method (trust, password,
// md5, SCRAM-SHA-256). When the process runs as root the server runs as the
// postgres user. Tests use Main to get one cluster per test binary; under
// CI=true a missing PostgreSQL fails the run instead of skipping. pgmemo's demo
// command uses Start directly.
package pgtest
