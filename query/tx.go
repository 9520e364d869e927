package query

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Tx describes a transaction-control statement.
type Tx struct {
	Kind TxKind
	// Isolation is the isolation level given, lower case ("serializable",
	// "repeatable read", "read committed", "read uncommitted"); empty when
	// not given.
	Isolation string
	// ReadOnly and ReadWrite report READ ONLY and READ WRITE; neither is set
	// when no access mode is given.
	ReadOnly  bool
	ReadWrite bool
	// Deferrable reports DEFERRABLE.
	Deferrable bool
	// Chain reports COMMIT AND CHAIN or ROLLBACK AND CHAIN.
	Chain bool
	// Savepoint is the savepoint of SAVEPOINT, RELEASE and ROLLBACK TO.
	Savepoint string
	// GID is the transaction identifier of PREPARE TRANSACTION and COMMIT or
	// ROLLBACK PREPARED.
	GID string
	// Snapshot is the snapshot of SET TRANSACTION SNAPSHOT.
	Snapshot string
}

// TxKind is the kind of transaction-control statement.
type TxKind uint8

// The transaction-control kinds.
const (
	TxBegin            TxKind = iota + 1 // BEGIN, START TRANSACTION
	TxCommit                             // COMMIT, END
	TxRollback                           // ROLLBACK, ABORT
	TxSavepoint                          // SAVEPOINT
	TxRelease                            // RELEASE [SAVEPOINT]
	TxRollbackTo                         // ROLLBACK TO [SAVEPOINT]
	TxPrepare                            // PREPARE TRANSACTION
	TxCommitPrepared                     // COMMIT PREPARED
	TxRollbackPrepared                   // ROLLBACK PREPARED
	TxSetTransaction                     // SET TRANSACTION
	TxSetSession                         // SET SESSION CHARACTERISTICS AS TRANSACTION
	TxSetSnapshot                        // SET TRANSACTION SNAPSHOT
)

var txKindNames = [...]string{
	TxBegin:            "BEGIN",
	TxCommit:           "COMMIT",
	TxRollback:         "ROLLBACK",
	TxSavepoint:        "SAVEPOINT",
	TxRelease:          "RELEASE",
	TxRollbackTo:       "ROLLBACK TO",
	TxPrepare:          "PREPARE TRANSACTION",
	TxCommitPrepared:   "COMMIT PREPARED",
	TxRollbackPrepared: "ROLLBACK PREPARED",
	TxSetTransaction:   "SET TRANSACTION",
	TxSetSession:       "SET SESSION CHARACTERISTICS",
	TxSetSnapshot:      "SET TRANSACTION SNAPSHOT",
}

func (k TxKind) String() string {
	if int(k) < len(txKindNames) && txKindNames[k] != "" {
		return txKindNames[k]
	}
	return "TxKind(" + strconv.Itoa(int(k)) + ")"
}

var txKinds = map[pg_query.TransactionStmtKind]TxKind{
	pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:             TxBegin,
	pg_query.TransactionStmtKind_TRANS_STMT_START:             TxBegin,
	pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:            TxCommit,
	pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:          TxRollback,
	pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:         TxSavepoint,
	pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:           TxRelease,
	pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:       TxRollbackTo,
	pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:           TxPrepare,
	pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:   TxCommitPrepared,
	pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED: TxRollbackPrepared,
}

func transactionStmt(s *pg_query.TransactionStmt) *Tx {
	tx := &Tx{
		Kind:      txKinds[s.Kind],
		Savepoint: s.SavepointName,
		GID:       s.Gid,
		Chain:     s.Chain,
	}
	tx.options(s.Options)
	return tx
}

// setTransaction returns the Tx of SET TRANSACTION, SET SESSION
// CHARACTERISTICS AS TRANSACTION and SET TRANSACTION SNAPSHOT, nil for other
// SET statements.
func setTransaction(s *pg_query.VariableSetStmt) *Tx {
	if s.Kind != pg_query.VariableSetKind_VAR_SET_MULTI {
		return nil
	}
	var tx Tx
	switch s.Name {
	case "TRANSACTION":
		tx.Kind = TxSetTransaction
		tx.options(s.Args)
	case "SESSION CHARACTERISTICS":
		tx.Kind = TxSetSession
		tx.options(s.Args)
	case "TRANSACTION SNAPSHOT":
		tx.Kind = TxSetSnapshot
		if len(s.Args) > 0 {
			tx.Snapshot, _ = constString(s.Args[0])
		}
	default:
		return nil
	}
	return &tx
}

// options reads the transaction modes of BEGIN and SET TRANSACTION.
func (tx *Tx) options(opts []*pg_query.Node) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		v, _ := constString(d.Arg)
		switch d.Defname {
		case "transaction_isolation":
			tx.Isolation = strings.ToLower(v)
		case "transaction_read_only":
			if isTrue(v) {
				tx.ReadOnly = true
			} else {
				tx.ReadWrite = true
			}
		case "transaction_deferrable":
			tx.Deferrable = isTrue(v)
		}
	}
}
