package storage

import (
	"errors"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// ErrNotOurs is returned by ClaimMeta for a file that has buckets but no meta bucket: some
// other program's bbolt database, which must not be written into.
var ErrNotOurs = errors.New("it has buckets but no meta bucket")

// ClaimMeta returns the file's meta bucket (named bucket). On a new file, one with no bucket
// at all, it creates it and writes keys into it (the file's format and site, say); the caller
// then checks the values as for any file. Every Crowdwatch file starts this way.
func ClaimMeta(tx *bolt.Tx, bucket []byte, keys map[string]string) (*bolt.Bucket, error) {
	if meta := tx.Bucket(bucket); meta != nil {
		return meta, nil
	}
	empty := true
	_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
	if !empty {
		return nil, ErrNotOurs
	}
	meta, err := tx.CreateBucket(bucket)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := meta.Put([]byte(k), []byte(keys[k])); err != nil {
			return nil, err
		}
	}
	return meta, nil
}
