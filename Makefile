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
	./firmware-sim/scenario:FuzzParse \
	./firmware-sim/replay:FuzzLoad \
	./web:FuzzDecodeLogin \
	./web/auth:FuzzParseSession \
	./web/auth:FuzzParseBearer \
	./web:FuzzAlertRequests \
	./web:FuzzParseAuditQuery \
	./history:FuzzParseParams \
	./history:FuzzCodecRoundTrip \
	./ingest/formats:FuzzMilesight \
	./ingest/formats:FuzzXovis \
	./ingest/formats:FuzzAxis \
	./ingest/formats:FuzzHikvision \
	./ingest/formats:FuzzChirpstack

.PHONY: demo test deps assets lint unit fuzz bench build loadbench faults soak

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
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s $$pkg; \
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
