//go:build !unix

package storage

import "os"

// release closes f (see unlock_unix.go).
func release(f *os.File) { _ = f.Close() }
