package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/storage"
)

// backupFiles are the files of a store by backup name.
func backupFiles(cfg *configs.Config) []struct{ name, path string } {
	return []struct{ name, path string }{{"occupancy", cfg.Storage.Path}, {"alerts", cfg.AlertsPath()}, {"history", cfg.HistoryPath()},
		{"auth", cfg.AuthPath()}, {"events", cfg.EventsPath()}}
}

// newBackupCmd is `crowdwatch backup`: consistent copies of a stopped service's files. A
// running service holds the occupancy and alert files with an exclusive lock that no other
// process can share, so for those the command says to use the service's endpoint.
func newBackupCmd() *cobra.Command {
	var configPath, out string
	cmd := &cobra.Command{
		Use:   "backup --config FILE --out DIR",
		Short: "Copy the occupancy, alert, history, sign-in and events files of a stopped service (a running one: GET /api/v1/backup)",
		Long: `Write a consistent copy of each of the store's files (occupancy, alerts, history, auth for
sign-in sessions and the audit log, events for the promotion plans) into DIR, checked after
writing. The files must not be held by a running service, except the history and events
files, which are shared. While the service runs, copy the others through it:

    curl -fH "Authorization: Bearer $ADMIN_TOKEN" -o occupancy.db "https://HOST/api/v1/backup?file=occupancy"

See docs/operations.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := configs.Load(configPath, nil)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o750); err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			var failed []string
			for _, f := range backupFiles(cfg) {
				dst := filepath.Join(out, filepath.Base(f.path))
				n, err := copyFile(f.path, dst)
				switch {
				case errors.Is(err, os.ErrNotExist):
					fmt.Fprintf(cmd.OutOrStdout(), "%-10s %s: none yet, skipped\n", f.name, f.path)
				case errors.Is(err, storage.ErrLocked):
					failed = append(failed, f.name)
					fmt.Fprintf(cmd.ErrOrStderr(), "%-10s %s is held by the running service: copy it with GET /api/v1/backup?file=%s (admin), see docs/operations.md\n", f.name, f.path, f.name)
				case err != nil:
					failed = append(failed, f.name)
					fmt.Fprintf(cmd.ErrOrStderr(), "%-10s %v\n", f.name, err)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%-10s %s -> %s (%d bytes)\n", f.name, f.path, dst, n)
				}
			}
			if len(failed) > 0 {
				return fmt.Errorf("backup: %d file(s) not copied: %v", len(failed), failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (YAML)")
	cmd.Flags().StringVar(&out, "out", "", "folder for the copies")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// copyFile writes a consistent copy of the bbolt file src to dst (through a temporary file
// renamed when complete and synced), then opens the copy to check it.
func copyFile(src, dst string) (int64, error) {
	db, err := storage.Open(src, storage.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	n, err := storage.Backup(db, func(int64) io.Writer { return tmp })
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("backup: writing %s: %w", dst, err)
	}
	check, err := storage.Open(tmp.Name(), storage.Options{ReadOnly: true, Verify: true})
	if err != nil {
		return n, fmt.Errorf("backup: the copy of %s does not read back: %w", src, err)
	}
	check.Close()
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}
