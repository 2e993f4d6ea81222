// Package storage opens Crowdwatch's bbolt files (occupancy, alerts, history) through one
// checked path. bbolt trusts its file: a truncated file makes it read past the end of its
// memory map (SIGBUS, which kills the process with a runtime trace), and damaged page headers
// make it panic. Open checks the file against its meta pages before bbolt maps it, turns
// bbolt's panics and memory faults during the open and a first read into an error that names
// the file and what to do, and refuses an existing empty file instead of starting over
// without a word.
package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged is wrapped by every error for a file that is not a readable bbolt database.
var ErrDamaged = errors.New("damaged")

// ErrLocked is wrapped (beside bbolt's ErrTimeout) when another process holds the file.
var ErrLocked = errors.New("locked by another process")

// Advice ends every damaged-file message.
const Advice = "restore it from a backup, see docs/operations.md"

// Options are the few bbolt settings Crowdwatch uses.
type Options struct {
	// ReadOnly opens with a shared lock; a missing file is then an error (fs.ErrNotExist)
	// instead of being created.
	ReadOnly bool
	// Timeout is how long to wait for the file's lock (0 waits for ever).
	Timeout time.Duration
	// InitialMmapSize maps this much at once, so that long reads do not block the writer
	// on a remap while the file grows.
	InitialMmapSize int
	// Verify reads every bucket and key once after opening, so that damage anywhere in the
	// tree is found at start-up rather than in the middle of a read later. It costs one pass
	// over the file: use it for files opened once per run, not for per-query opens.
	Verify bool
}

// DamagedError says which file is damaged and how.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("storage: %s is damaged (%s): %s", e.Path, e.Reason, Advice)
}

func (e *DamagedError) Unwrap() error { return ErrDamaged }

func damaged(path, format string, args ...any) error {
	return &DamagedError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// Open opens (or, unless read-only, creates) the bbolt file at path. A damaged file fails
// with a *DamagedError; a file locked by another process with an error wrapping ErrLocked
// and bbolt's ErrTimeout.
func Open(path string, opts Options) (*bolt.DB, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if opts.ReadOnly {
			return nil, fmt.Errorf("storage: %s: %w", path, err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("storage: cannot create the folder for %s: %w", path, err)
		}
	case err != nil:
		return nil, fmt.Errorf("storage: cannot open %s: %w", path, err)
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("storage: %s is not a regular file", path)
	case info.Size() == 0:
		// bbolt writes its four first pages before it returns from creating a file, so an
		// empty file was emptied by something else (a failed copy, a full disk, truncate);
		// opening it would silently start with no data.
		return nil, damaged(path, "the file exists but is empty, 0 bytes")
	default:
		if err := checkFile(path); err != nil {
			return nil, err
		}
	}
	return openGuarded(path, opts)
}

// openGuarded runs bbolt's open and the first read with faults turned into panics, and
// recovers them. bbolt does not return the file it opened when it panics, so OpenFile keeps
// it here to be unlocked and closed: its lock would otherwise stay held for the life of the
// process. (The mapping bbolt made before it panicked is not returned either; it costs
// address space, not memory, and only once per refused open.)
func openGuarded(path string, opts Options) (db *bolt.DB, err error) {
	var file *os.File
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if db != nil {
			_ = db.Close()
		} else if file != nil {
			release(file)
		}
		db, err = nil, damaged(path, "%v", r)
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))

	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.Timeout,
		ReadOnly:        opts.ReadOnly,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("storage: %s is %w (is crowdwatch already running?): %w", path, ErrLocked, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, damaged(path, "%v", err)
	case err != nil:
		return nil, fmt.Errorf("storage: cannot open %s: %w", path, err)
	}
	if opts.Verify {
		if err := db.View(walk); err != nil {
			_ = db.Close()
			return nil, damaged(path, "%v", err)
		}
	}
	return db, nil
}

// walk reads every key of every bucket, which touches every page in use.
func walk(tx *bolt.Tx) error {
	var visit func(b *bolt.Bucket, depth int) error
	visit = func(b *bolt.Bucket, depth int) error {
		if depth > 64 {
			return errors.New("buckets nested too deep")
		}
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if child := b.Bucket(k); child != nil {
					return visit(child, depth+1)
				}
			}
			return nil
		})
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return visit(b, 1) })
}

// View runs a read transaction on a file opened with Open, turning a panic or memory fault
// from a page damaged after the open into a *DamagedError instead of a crash.
func View(db *bolt.DB, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damaged(db.Path(), "%v", r)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return db.View(fn)
}

// The meta page layout of bbolt's file format version 2 (go.etcd.io/bbolt/internal/common):
// a 16-byte page header, then magic, version, page size, flags (4 bytes each), the root
// bucket (page id, sequence), the freelist page id, the high-water page id, the transaction
// id and an FNV-64a checksum of the meta before it (8 bytes each). bbolt writes it in the
// machine's byte order; every platform Crowdwatch ships for is little-endian.
const (
	pageHeaderSize = 16
	metaSize       = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	noFreelist     = ^uint64(0)
)

type meta struct {
	pageSize             uint32
	root, freelist, pgid uint64
	txid                 uint64
}

// readMeta decodes and validates the meta page at off; ok is false when it is not one.
func readMeta(f *os.File, off int64) (m meta, ok bool) {
	var buf [pageHeaderSize + metaSize]byte
	if n, err := f.ReadAt(buf[:], off); n < len(buf) && err != nil {
		return m, false
	}
	b := buf[pageHeaderSize:]
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != boltMagic || le.Uint32(b[4:]) != boltVersion {
		return m, false
	}
	h := fnv.New64a()
	_, _ = h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return m, false
	}
	return meta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), freelist: le.Uint64(b[32:]),
		pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}, true
}

// checkFile compares the file's size with what its meta pages say it holds. bbolt maps the
// file and reads pages up to the high-water mark; a page beyond the end of the file is a
// SIGBUS, not an error.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("storage: cannot open %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("storage: cannot open %s: %w", path, err)
	}
	size := info.Size()
	if size < 2*1024 {
		return damaged(path, "it is %d bytes, smaller than the two meta pages every database file starts with", size)
	}
	// Page 0 gives the page size; page 1 sits one page further. When page 0 is damaged,
	// try the page sizes bbolt can use, as bbolt itself does.
	var metas []meta
	m0, ok0 := readMeta(f, 0)
	if ok0 {
		metas = append(metas, m0)
		if m1, ok := readMeta(f, int64(m0.pageSize)); ok {
			metas = append(metas, m1)
		}
	} else {
		for i := 0; i <= 14; i++ {
			if m1, ok := readMeta(f, 1024<<i); ok {
				metas = append(metas, m1)
				break
			}
		}
	}
	if len(metas) == 0 {
		return damaged(path, "neither meta page is valid: it is not a database file, or its first pages were overwritten")
	}
	// bbolt uses the valid meta with the higher transaction id.
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	ps := uint64(m.pageSize)
	if ps < 512 || ps > 1<<24 || ps&(ps-1) != 0 {
		return damaged(path, "its meta page gives a page size of %d", ps)
	}
	if m.pgid < 4 || m.pgid > uint64(1<<62)/ps {
		return damaged(path, "its meta page gives %d pages", m.pgid)
	}
	if want := m.pgid * ps; uint64(size) < want {
		return damaged(path, "it is %d bytes but its meta page says it holds %d pages of %d bytes, %d bytes: it was cut short", size, m.pgid, ps, want)
	}
	if m.root < 2 || m.root >= m.pgid {
		return damaged(path, "its root page %d is outside the file's %d pages", m.root, m.pgid)
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid) {
		return damaged(path, "its freelist page %d is outside the file's %d pages", m.freelist, m.pgid)
	}
	return nil
}

// Backup writes a consistent copy of an open file inside one read transaction: the copy is
// the file as of that transaction, whatever the writer does meanwhile (bbolt's Tx.WriteTo).
// start is called first with the copy's exact size and gives the writer, so that an HTTP
// answer can carry a Content-Length and a cut-off download is noticed. It returns the
// bytes written.
func Backup(db *bolt.DB, start func(size int64) io.Writer) (n int64, err error) {
	err = View(db, func(tx *bolt.Tx) error {
		n, err = tx.WriteTo(start(tx.Size()))
		return err
	})
	return n, err
}

// BackupFile writes a consistent copy of the file at path, which no process holds open for
// writing for long (the events file is open only per change): it opens it read-only, waiting
// up to timeout for a writer's lock, and copies it in one read transaction (Backup).
func BackupFile(path string, timeout time.Duration, start func(size int64) io.Writer) (int64, error) {
	db, err := Open(path, Options{ReadOnly: true, Timeout: timeout})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return Backup(db, start)
}
