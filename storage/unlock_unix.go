//go:build unix

package storage

import (
	"os"
	"syscall"
)

// release drops the lock bbolt took on f before f is closed. Closing alone is not enough
// after bbolt has mapped the file: the mapping keeps the open file, and with it the lock,
// alive, so that every later open of the file in this process would time out as "locked".
func release(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	_ = f.Close()
}
