// Command crowdwatch is the store's crowd-flow service: run `crowdwatch demo` to see it work,
// `crowdwatch serve --config store.yaml` in a store.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from
// the module's build information.
var version = ""

func main() {
	if err := newRootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "crowdwatch",
		Short:         "Live crowd-flow monitoring for stores: door counters in, per-zone occupancy out",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "text or json")
	root.AddCommand(newServeCmd(g), newDemoCmd(g), newCheckConfigCmd(), newVersionCmd(), newHashPasswordCmd(), newTokenCmd())
	root.AddCommand(newReportCmd(), newBenchCmd()) // cmd/crowdwatch/report.go
	root.AddCommand(newBackupCmd())                // cmd/crowdwatch/backup.go
	root.AddCommand(newAssessCmd(), newPlanCmd())  // cmd/crowdwatch/planning.go
	return root
}

func (g *globalFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q must be text or json", g.logFormat)
}

// signalContext ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v = strings.TrimSuffix(v+" "+s.Value[:12], " ")
		}
	}
	return v
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "crowdwatch", versionString())
		},
	}
}

// reloadSignal sends on the returned channel for each SIGHUP (a burst becomes one) until ctx
// ends: the service reloads its store file's alerting settings (app.Reload).
func reloadSignal(ctx context.Context) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
