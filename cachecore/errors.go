package cachecore

import (
	"errors"
	"fmt"
	"strconv"
)

// Reasons a value is not stored, wrapped by *SetError. Test for them with
// errors.Is.
var (
	// ErrTooLarge means len(key)+len(value) exceeds Options.MaxEntryBytes.
	ErrTooLarge = errors.New("value exceeds the cache's MaxEntryBytes")
	// ErrStale means the snapshot is no longer current: a tag or scope it
	// covers was invalidated after it was taken (a write raced with the
	// fill). The zero Snapshot and a Snapshot of another Cache are never
	// current either.
	ErrStale = errors.New("snapshot is no longer current")
	// ErrFillDone means the fill was already completed or aborted.
	ErrFillDone = errors.New("fill already completed or aborted")
)

// Errors of calling a Fill method in the wrong role.
var (
	// ErrNotLeader is returned by Complete on a follower's Fill.
	ErrNotLeader = errors.New("cachecore: only the leader of a fill may complete it")
	// ErrNotFollower is returned by Wait on the leader's Fill.
	ErrNotFollower = errors.New("cachecore: the leader of a fill cannot wait for it")
)

// SetError is returned by Set, SetWithTTL and Fill.Complete when a value is not
// stored. Err is ErrTooLarge, ErrStale or ErrFillDone.
type SetError struct {
	Key  string // the entry's key
	Size int    // len(key)+len(value)
	Err  error
}

func (e *SetError) Error() string {
	return "cachecore: not stored (" + strconv.Itoa(e.Size) + " bytes): " + e.Err.Error()
}

func (e *SetError) Unwrap() error { return e.Err }

// ConfigError is returned by New for an invalid Options field.
type ConfigError struct {
	Field string // the Options field; empty for an error of the underlying otter cache
	Err   error
}

func (e *ConfigError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("cachecore: %v", e.Err)
	}
	return fmt.Sprintf("cachecore: invalid Options.%s: %v", e.Field, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }
