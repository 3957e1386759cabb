package providers

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"

	"github.com/hcistorage/storage-webhook/rollout"
)

// Store holds the configuration in force: the providers file (or the built-in table) and
// the Harvester the service runs beside, whose release decides the built-in rows' values
// (Facts) and whose Settings VMB-V1 reads. A reload of the file swaps it atomically; the
// Harvester part follows the cluster view's Settings without a restart. Rules read it with
// Table and Harvester: one atomic load and two comparisons while nothing has changed.
type Store struct {
	path   string
	rules  rollout.Catalogue    // what a reload checks the file's rollout against
	file   atomic.Pointer[File] // nil: the built-in table
	last   []byte               // the bytes last read, so unchanged files are not re-parsed
	onLoad func(err error)      // hears of each reload that changed the file or failed

	// What UseHarvester sets, before the store is shared.
	settings SettingsSource
	pin      string
	onChange func(*Harvester)

	mu       sync.Mutex // serialises resolve: lastGood and onChange
	lastGood lastGood
	inForce  atomic.Pointer[inForce]
}

// inForce is the configuration derived from one providers file and one generation of the
// Settings.
type inForce struct {
	file      *File
	settings  uint64
	table     Table
	harvester *Harvester
}

// NewStore returns a store that always serves f (nil: the built-in table).
func NewStore(f *File) *Store {
	s := &Store{}
	s.file.Store(f)
	return s
}

// Load reads path once, checking its rollout against the rules of cat; the file must be
// valid at start-up. onLoad (may be nil) hears of every later reload attempt.
func Load(path string, cat rollout.Catalogue, onLoad func(err error)) (*Store, error) {
	s := &Store{path: path, rules: cat, onLoad: onLoad}
	if _, err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// UseHarvester makes the store follow the Harvester of src (nil: none), unless pin (a
// validated --harvester-version, "" for none) names its release. onChange (may be nil)
// hears of the Harvester in force at the first read and whenever its release, the source
// of that, or a Setting's problem changes. Call it before the store is shared.
func (s *Store) UseHarvester(src SettingsSource, pin string, onChange func(*Harvester)) {
	s.settings, s.pin, s.onChange = src, pin, onChange
	s.inForce.Store(nil)
}

// Table returns the table in force.
func (s *Store) Table() Table { return s.current().table }

// Harvester returns the Harvester in force.
func (s *Store) Harvester() *Harvester { return s.current().harvester }

// Policy returns the rollout in force (nil: every rule enforced, no exception).
func (s *Store) Policy() *rollout.Policy { return s.file.Load().Policy() }

// File returns the providers file in force, nil for the built-in table.
func (s *Store) File() *File { return s.file.Load() }

// Path is the file the table comes from, "" for the built-in table.
func (s *Store) Path() string { return s.path }

func (s *Store) generation() uint64 {
	if s.settings == nil {
		return 0
	}
	return s.settings.SettingsGeneration()
}

func (s *Store) current() *inForce {
	f, gen := s.file.Load(), s.generation()
	if c := s.inForce.Load(); c != nil && c.file == f && c.settings == gen {
		return c
	}
	return s.resolve(f, gen)
}

// resolve derives the configuration of file f and settings generation gen.
func (s *Store) resolve(f *File, gen uint64) *inForce {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.inForce.Load()
	if prev != nil && prev.file == f && prev.settings == gen {
		return prev // another reader resolved it meanwhile
	}
	var filePin string
	if f != nil {
		filePin = f.HarvesterVersion
	}
	h := resolveHarvester(s.pin, filePin, s.path, s.settings, &s.lastGood)
	c := &inForce{file: f, settings: gen, table: f.Table(h.Behaviour), harvester: h}
	s.inForce.Store(c)
	if s.onChange != nil && (prev == nil || !h.same(prev.harvester)) {
		s.onChange(h)
	}
	return c
}

// reload re-reads the file and reports whether it changed; on any error the previous file
// stays in force.
func (s *Store) reload() (bool, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return false, fmt.Errorf("read providers file: %w", err)
	}
	if s.last != nil && bytes.Equal(data, s.last) {
		return false, nil
	}
	s.last = data // a bad file is reported once, not at every event until it changes
	f, err := Parse(data, s.rules)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.path, err)
	}
	s.file.Store(f)
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
