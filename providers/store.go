package providers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"
)

// Store holds the table in force. Rules read it with Table(); a reload swaps it atomically.
type Store struct {
	path   string
	table  atomic.Pointer[Table]
	last   []byte          // the bytes last read, so unchanged files are not re-parsed
	onLoad func(err error) // hears of each reload that changed the table or failed
}

// NewStatic returns a store that always serves t.
func NewStatic(t Table) *Store {
	s := &Store{}
	s.table.Store(&t)
	return s
}

// Load reads path once; the file must be valid at start-up. onLoad (may be nil) hears of
// every later reload attempt.
func Load(path string, onLoad func(err error)) (*Store, error) {
	s := &Store{path: path, onLoad: onLoad}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Table returns the table in force.
func (s *Store) Table() Table { return *s.table.Load() }

// Path is the file the table comes from, "" for the built-in table.
func (s *Store) Path() string { return s.path }

// reload re-reads the file and reports whether the table changed; on any error the
// previous table stays in force.
func (s *Store) reload() (bool, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("read providers file: %w", err)
	}
	if s.last != nil && bytes.Equal(data, s.last) {
		return false, nil
	}
	s.last = data // a bad file is reported once, not at every event until it changes
	t, err := Parse(data)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.path, err)
	}
	s.table.Store(&t)
	return true, nil
}

// Watch re-reads the file whenever its directory changes, until ctx ends. It watches the
// directory, not the file, because a mounted ConfigMap is updated by swapping a symlink.
func (s *Store) Watch(ctx context.Context) error {
	if s.path == "" {
		<-ctx.Done()
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			s.report(fmt.Errorf("watch providers file: %w", err))
		case <-w.Events:
			if _, err := os.Stat(s.path); err != nil {
				continue // mid-swap or removed: keep the table, wait for the next event
			}
			if changed, err := s.reload(); changed || err != nil {
				s.report(err)
			}
		}
	}
}

func (s *Store) report(err error) {
	if s.onLoad != nil {
		s.onLoad(err)
	}
}
