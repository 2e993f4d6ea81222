package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BackupFiles are the files GET /api/v1/backup copies.
var BackupFiles = []string{"occupancy", "alerts", "history", "auth", "events"}

// Backups copies the service's files while it runs. The occupancy and alert files are held
// open (with bbolt's exclusive lock) for the service's whole life, so a copy made by another
// process is impossible and one made with cp may be torn; this copies inside one read
// transaction of the running service instead.
type Backups interface {
	// Backup writes a consistent copy of file (one of BackupFiles); start is called once
	// with the copy's size before anything is written and gives the writer.
	Backup(ctx context.Context, file string, start func(size int64) io.Writer) (int64, error)
}

func (a *api) backupRoutes() {
	a.route("GET /api/v1/backup", RoleAdmin, a.backup)
}

// backup streams one file: ?file=occupancy|alerts|history|auth|events. The answer has the copy's exact
// Content-Length, so that a download cut off half way is seen as incomplete.
func (a *api) backup(w http.ResponseWriter, r *http.Request) {
	if a.Backups == nil {
		writeError(w, http.StatusServiceUnavailable, "backups are not available from this service")
		return
	}
	file := r.URL.Query().Get("file")
	if !slices.Contains(BackupFiles, file) {
		writeError(w, http.StatusBadRequest, "file must be one of "+strings.Join(BackupFiles, ", "))
		return
	}
	started := false
	n, err := a.Backups.Backup(r.Context(), file, func(size int64) io.Writer {
		started = true
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.db"`, file, time.Now().UTC().Format("20060102T150405Z")))
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return w
	})
	who, _ := r.Context().Value(whoKey{}).(string)
	switch {
	case err != nil && !started:
		a.Log.Error("backup failed", "file", file, "who", who, "error", err)
		writeError(w, http.StatusServiceUnavailable, "backup failed: "+err.Error())
	case err != nil:
		// The status is sent; the short body against its Content-Length tells the client.
		a.Log.Error("backup cut off", "file", file, "who", who, "bytes", n, "error", err)
	default:
		a.Log.Info("backup sent", "file", file, "who", who, "bytes", n)
	}
}
