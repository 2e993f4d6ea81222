package web

import (
	"strings"
	"testing"
)

func TestDecodeLogin(t *testing.T) {
	cases := []struct {
		body, user, err string
	}{
		{`{"username":" guard ","password":"pw"}`, "guard", ""},
		{`{"username":"guard"}`, "", "required"},
		{`{"username":"","password":"pw"}`, "", "required"},
		{`{"username":"g","password":"pw","role":"admin"}`, "", "unknown field"},
		{`username=g&password=pw`, "", "must be JSON"},
		{`{"username":"` + strings.Repeat("a", 5000) + `","password":"pw"}`, "", "must be JSON"},
	}
	for _, c := range cases {
		req, err := DecodeLogin(strings.NewReader(c.body))
		if c.err == "" && (err != nil || req.Username != c.user) {
			t.Errorf("%s: %+v %v", c.body, req, err)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.body, err, c.err)
		}
	}
}

func FuzzDecodeLogin(f *testing.F) {
	f.Add(`{"username":"guard","password":"pw"}`)
	f.Add(`{"username":1}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodeLogin(strings.NewReader(body))
		if err == nil && (req.Username == "" || req.Password == "" || req.Username != strings.TrimSpace(req.Username)) {
			t.Errorf("accepted %q as %+v", body, req)
		}
	})
}
