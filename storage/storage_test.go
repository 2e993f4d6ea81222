package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fill writes a file of several hundred pages: buckets, nested buckets and enough keys for
// branch pages, then frees some pages so that the freelist is not empty.
func fill(t *testing.T, path string) {
	t.Helper()
	db, err := Open(path, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"meta", "log", "zones"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			inner, err := b.CreateBucket([]byte("inner"))
			if err != nil {
				return err
			}
			for i := range 3000 {
				var k [8]byte
				binary.BigEndian.PutUint64(k[:], uint64(i))
				if err := b.Put(k[:], bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
					return err
				}
				if err := inner.Put(k[:], []byte("x")); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("zones")) })
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// scramble writes random bytes over the 16-byte header of every page from the third on
// (the two meta pages have checksums; bbolt trusts every other header).
func scramble(t *testing.T, path string, seed uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for off := 2 * 4096; off+16 <= len(b); off += 4096 {
		for i := range 16 {
			b[off+i] = byte(r.Uint32())
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDamage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		opts   Options
		reason string
	}{
		{"truncated to 8192 bytes", func(t *testing.T, p string) {
			if err := os.Truncate(p, 8192); err != nil {
				t.Fatal(err)
			}
		}, Options{}, "cut short"},
		{"truncated by one page", func(t *testing.T, p string) {
			f, _ := os.Open(p)
			m, ok := readMeta(f, 0)
			f.Close()
			if !ok {
				t.Fatal("no meta")
			}
			if err := os.Truncate(p, int64(m.pgid*uint64(m.pageSize))-4096); err != nil {
				t.Fatal(err)
			}
		}, Options{ReadOnly: true}, "cut short"},
		{"empty but existing", func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}, Options{}, "empty, 0 bytes"},
		{"shorter than the meta pages", func(t *testing.T, p string) {
			if err := os.Truncate(p, 1000); err != nil {
				t.Fatal(err)
			}
		}, Options{}, "smaller than the two meta pages"},
		{"not a database", func(t *testing.T, p string) {
			if err := os.WriteFile(p, bytes.Repeat([]byte("crowd"), 10000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, Options{}, "neither meta page is valid"},
		{"random page headers, writer", func(t *testing.T, p string) { scramble(t, p, 1) }, Options{Verify: true}, ""},
		{"random page headers, reader", func(t *testing.T, p string) { scramble(t, p, 2) }, Options{ReadOnly: true, Verify: true}, ""},
		{"random page headers, no verify", func(t *testing.T, p string) { scramble(t, p, 3) }, Options{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cw.db")
			fill(t, path)
			tc.damage(t, path)
			before, _ := os.ReadFile(path)
			db, err := Open(path, tc.opts)
			if err == nil {
				db.Close()
				t.Fatal("a damaged file opened")
			}
			var de *DamagedError
			if !errors.As(err, &de) || !errors.Is(err, ErrDamaged) {
				t.Fatalf("error %v is not a DamagedError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.HasSuffix(msg, Advice) || strings.Contains(msg, "\n") {
				t.Errorf("message %q must be one line naming the file and ending with %q", msg, Advice)
			}
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("message %q does not say %q", msg, tc.reason)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Error("a refused open changed the file")
			}
			// A refused open releases the file: it can be opened for writing at once after
			// being restored (here: replaced by a new file).
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			db, err = Open(path, Options{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatalf("after the damaged file was removed: %v", err)
			}
			db.Close()
		})
	}
}

// TestOpenKeepsLockReleasedAfterPanic: bbolt panics inside Open on a damaged freelist; the
// file it opened (and its lock) must be closed, or a writer would wait on it for ever.
func TestOpenKeepsLockReleasedAfterPanic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cw.db")
	fill(t, path)
	scramble(t, path, 4)
	for range 3 {
		if _, err := Open(path, Options{ReadOnly: true, Verify: true}); !errors.Is(err, ErrDamaged) {
			t.Fatalf("got %v, want damaged", err)
		}
	}
	// An exclusive lock is granted only when no shared lock from above is left open. Open
	// refuses the file again, but as damaged, not as locked.
	for range 3 {
		if _, err := Open(path, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrDamaged) {
			t.Fatalf("got %v, want damaged (not locked)", err)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "cw.db")
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open of a missing file: %v", err)
	}
	fill(t, path) // creates the folder and the file
	db, err := Open(path, Options{Verify: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("a sound file: %v", err)
	}
	defer db.Close()
	if _, err := Open(path, Options{Timeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
	var copy bytes.Buffer
	var size int64
	n, err := Backup(db, func(sz int64) io.Writer { size = sz; return &copy })
	if err != nil || n != size || int64(copy.Len()) != size {
		t.Fatalf("backup: %v, wrote %d of %d (%d)", err, n, size, copy.Len())
	}
	cp := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(cp, copy.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(cp, Options{ReadOnly: true, Verify: true})
	if err != nil {
		t.Fatalf("the copy: %v", err)
	}
	defer c.Close()
	if err := c.View(func(tx *bolt.Tx) error {
		var last [8]byte
		binary.BigEndian.PutUint64(last[:], 2999)
		if tx.Bucket([]byte("log")).Bucket([]byte("inner")).Get(last[:]) == nil {
			return errors.New("the copy lacks keys")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestViewRecoversDamageAfterOpen: a page damaged after a file was opened (without Verify)
// fails the read that meets it, not the process.
func TestViewRecoversDamageAfterOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cw.db")
	fill(t, path)
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	scramble(t, path, 5) // through the page cache: the mapping sees it
	err = View(db, walk)
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("got %v, want damaged", err)
	}
}
