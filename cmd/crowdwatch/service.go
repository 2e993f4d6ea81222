package main

import (
	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/app"
	"github.com/crowdwatch/crowdwatch/configs"
)

// serviceFlags are the common settings a flag can override (over the file and environment).
type serviceFlags struct {
	httpListen, mqttListen, storagePath, broker string
}

func (f *serviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.httpListen, "http-listen", "", "HTTP address (overrides http.listen)")
	cmd.Flags().StringVar(&f.mqttListen, "mqtt-listen", "", "embedded broker address (overrides mqtt.embedded.listen)")
	cmd.Flags().StringVar(&f.storagePath, "storage-path", "", "database file (overrides storage.path)")
	cmd.Flags().StringVar(&f.broker, "broker", "", "external broker URL instead of the embedded one (overrides mqtt.broker)")
}

func (f *serviceFlags) overrides() map[string]any {
	o := map[string]any{}
	for key, v := range map[string]string{"http.listen": f.httpListen, "mqtt.embedded.listen": f.mqttListen,
		"storage.path": f.storagePath, "mqtt.broker": f.broker} {
		if v != "" {
			o[key] = v
		}
	}
	return o
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var configPath string
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the service for a store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := configs.Load(configPath, sf.overrides())
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			a, err := app.New(cfg, app.Options{Logger: log, Version: versionString(),
				Reload: &app.Reload{Path: configPath, Overrides: sf.overrides(), Signal: reloadSignal(ctx)}})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	sf.register(cmd)
	return cmd
}
