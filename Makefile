# The two commands a developer needs are `make demo` and
# `make test`. Everything else here is what those use.
GO       ?= go
FUZZTIME ?= 10s
# Minimising a new input of the config fuzzer (a whole YAML store) would otherwise take up to
# a minute of what looks like a stall.

# Every decoder of outside input has a fuzz target: package and target name.
FUZZ_TARGETS = \
	./ingest:FuzzDecodeCounter \
	./ingest:FuzzDecodeOccupancy \
	./ingest:FuzzDecodeStatus \
	./ingest:FuzzTopicParse \
	./ingest:FuzzWillRefusal \
	./configs:FuzzParse \
	./promotion:FuzzPlanInput \
	./firmware-sim/scenario:FuzzParse \
	./firmware-sim/replay:FuzzLoad \
	./web:FuzzDecodeLogin \
	./web/auth:FuzzParseSession \
	./web/auth:FuzzParseBearer \
	./web:FuzzAlertRequests \
	./web:FuzzParseAuditQuery \
	./history:FuzzParseParams \
	./history:FuzzCodecRoundTrip \
	./history:FuzzPackedDecode \
	./zones:FuzzDecodeRecord \
	./ingest/formats:FuzzMilesight \
	./ingest/formats:FuzzXovis \
	./ingest/formats:FuzzAxis \
	./ingest/formats:FuzzHikvision \
	./ingest/formats:FuzzChirpstack

.PHONY: demo test deps assets lint unit fuzz bench build loadbench faults soak release deb

demo: assets
	$(GO) run ./cmd/crowdwatch demo

build: assets
	$(GO) build -o bin/crowdwatch ./cmd/crowdwatch

test: deps assets lint unit fuzz

# The manager pages' chart library (uPlot) comes from the npm registry, pinned by
# web/charts/package-lock.json, and is copied where the binary embeds it.
VENDOR = web/assets/static/vendor
assets: $(VENDOR)/uPlot.esm.js $(VENDOR)/uPlot.min.css

$(VENDOR)/uPlot.esm.js $(VENDOR)/uPlot.min.css: web/charts/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: run 'make deps' or 'apt-get install npm'"; exit 1; }
	cd web/charts && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp web/charts/node_modules/uplot/dist/uPlot.esm.js web/charts/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/

deps:
	.ci/install-deps

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 40m ./...

# Go's fuzzing engine sometimes stalls its workers on a busy 2-core machine and ends with
# "context deadline exceeded" and no failing input; such a run is tried once more. A run that
# found an input ("Failing input written to ...") fails at once.
fuzz:
	@set -e; log=$$(mktemp); trap 'rm -f $$log' EXIT; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		for try in 1 2; do \
			echo "fuzz $$pkg $$name for $(FUZZTIME) (try $$try)"; \
			if $(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg >$$log 2>&1; then cat $$log; break; fi; \
			cat $$log; \
			if [ $$try = 1 ] && grep -q 'context deadline exceeded' $$log && ! grep -q 'Failing input written' $$log; then \
				echo "fuzz $$name: the engine stalled without a failing input; once more"; continue; fi; \
			exit 1; \
		done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

# Load test: the whole path against the bare broker, and the soak (docs/benchmarks.md).
loadbench: build
	bin/crowdwatch bench --devices 100 --rate 0 --clients 0 --duration 10s
	bin/crowdwatch bench --devices 100 --rate 0 --clients 0 --duration 10s --broker mosquitto
	bin/crowdwatch bench --devices 200 --rate 10 --clients 500 --zones 200 --duration 20s
	bin/crowdwatch bench --devices 200 --rate 10 --clients 500 --zones 200 --duration 20s --broker mosquitto

faults:
	.ci/faults

SOAK_MINUTES ?= 60
soak:
	.ci/soak $(SOAK_MINUTES)

# Release (docs/operations.md, "Install"): static binaries for linux/amd64 and linux/arm64
# with the version stamped in, and a .deb of each, in $(DIST)/. VERSION is the tag (v1.2.0 ->
# 1.2.0) or 0.0.0+git<commit> for an untagged build; both are valid Debian versions.
# nfpm runs with `go run pkg@version` rather than as a go.mod `tool`: a tool directive would put
# the packager's ~60 modules into the service's go.mod and go.sum (and into every `go list -m
# all` and vulnerability report of the service); `go run @version` still verifies the module
# against the checksum database, and the version is pinned here.
DIST         ?= dist
NFPM_VERSION ?= v2.45.2
NFPM          = $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
VERSION      ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo "$${v\#v}" || echo "0.0.0+git$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)")
ARCH         ?= amd64
RELEASE_ARCHES = amd64 arm64

release: assets
	@set -e; for a in $(RELEASE_ARCHES); do $(MAKE) --no-print-directory deb ARCH=$$a VERSION='$(VERSION)' DIST='$(DIST)'; done
	@ls -l $(DIST)/*.deb

# One architecture: make deb ARCH=arm64. The cmd/crowdwatch package test runs this target.
deb: assets
	mkdir -p $(DIST)/linux-$(ARCH)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath \
		-ldflags '-s -w -X main.version=$(VERSION)' -o $(DIST)/linux-$(ARCH)/crowdwatch ./cmd/crowdwatch
	VERSION='$(VERSION)' ARCH=$(ARCH) BINARY=$(DIST)/linux-$(ARCH)/crowdwatch \
		$(NFPM) package --config deploy/nfpm.yaml --packager deb --target $(DIST)/
