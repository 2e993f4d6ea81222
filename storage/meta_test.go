package storage

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestClaimMeta(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(tx *bolt.Tx) error
		wantErr error
		want    string // the format read back
	}{
		{"a new file gets its meta", func(*bolt.Tx) error { return nil }, nil, "test/1"},
		{"an existing meta is kept as it is", func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("format"), []byte("older/0"))
		}, nil, "older/0"},
		{"another program's file is refused", func(tx *bolt.Tx) error {
			_, err := tx.CreateBucket([]byte("theirs"))
			return err
		}, ErrNotOurs, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "f.db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(c.prepare); err != nil {
				t.Fatal(err)
			}
			var got string
			err = db.Update(func(tx *bolt.Tx) error {
				meta, err := ClaimMeta(tx, []byte("meta"), map[string]string{"format": "test/1", "site": "s1"})
				if err != nil {
					return err
				}
				got = string(meta.Get([]byte("format")))
				return nil
			})
			if !errors.Is(err, c.wantErr) || got != c.want {
				t.Fatalf("err %v, format %q; want %v, %q", err, got, c.wantErr, c.want)
			}
			if c.wantErr != nil {
				_ = db.View(func(tx *bolt.Tx) error {
					if tx.Bucket([]byte("meta")) != nil {
						t.Fatal("a meta bucket was written into another program's file")
					}
					return nil
				})
			}
		})
	}
}
