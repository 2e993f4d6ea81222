// Package assets holds the browser side, embedded in the binary: the dashboard, the guidance
// screens, the sign-in page, their scripts and styles, and the message catalogue (i18n.json)
// that the pages and the server's guidance texts share.
package assets

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS is the static files, rooted at the static folder.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err)
	}
	return sub
}

// Messages returns the message catalogue: language -> key -> text.
func Messages() (map[string]map[string]string, error) {
	b, err := files.ReadFile("static/i18n.json")
	if err != nil {
		return nil, fmt.Errorf("assets: message catalogue: %w", err)
	}
	var cat map[string]map[string]string
	if err := json.Unmarshal(b, &cat); err != nil {
		return nil, fmt.Errorf("assets: message catalogue is not valid JSON: %w", err)
	}
	return cat, nil
}
