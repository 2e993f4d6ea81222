package configs

import "time"

// validateStorage checks the storage section.
func (c *Config) validateStorage(bad func(key, format string, args ...any)) {
	if c.Storage.Path == "" {
		bad("storage.path", "is required")
	}
	// Durations need a unit ("5ms", "2m"): a bare number is nanoseconds, which the bounds
	// below catch.
	if c.Storage.CommitInterval < 100*time.Microsecond || c.Storage.CommitInterval > time.Second {
		bad("storage.commit_interval", "%v must be between 100µs and 1s (write a unit, e.g. 5ms)", c.Storage.CommitInterval)
	}
	if c.Storage.CommitMode != "idle" && c.Storage.CommitMode != "interval" {
		bad("storage.commit_mode", "%q must be idle or interval", c.Storage.CommitMode)
	}
	if c.Storage.LogRetention != 0 && c.Storage.LogRetention < time.Hour {
		bad("storage.log_retention", "%v must be 0 (keep for ever) or at least 1h (write a unit, e.g. 168h)", c.Storage.LogRetention)
	}
	if c.Storage.CommitBatch < 1 || c.Storage.CommitBatch > MaxCommitBatch {
		bad("storage.commit_batch", "%d must be between 1 and %d", c.Storage.CommitBatch, MaxCommitBatch)
	}
}
