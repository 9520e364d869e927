// Package pgtest starts throwaway PostgreSQL clusters from the machine's server
// binaries: initdb and pg_ctl into a temporary directory, a free loopback port,
// wal_level=logical, and login roles for each password method (trust, password,
// md5, SCRAM-SHA-256). When the process runs as root the server runs as the
// postgres user. Tests use Main to get one cluster per test binary; under
// CI=true a missing PostgreSQL fails the run instead of skipping. A cluster's
// directory records the pid of the process that started it, and Start first
// stops and removes the clusters of processes that died without doing so (a
// test binary killed, or ended by a test timeout). pgmemo's demo command uses
// Start directly.
package pgtest
