# The two commands a developer needs are `make demo` (or `go run ./cmd/crowdwatch demo`) and
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
	./configs:FuzzParse \
	./firmware-sim/scenario:FuzzParse \
	./firmware-sim/replay:FuzzLoad \
	./web:FuzzDecodeLogin \
	./web/auth:FuzzParseSession \
	./web/auth:FuzzParseBearer

.PHONY: demo test deps lint unit fuzz bench build loadbench soak

demo:
	$(GO) run ./cmd/crowdwatch demo

build:
	$(GO) build -o bin/crowdwatch ./cmd/crowdwatch

test: deps lint unit fuzz

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

# Issue 7: the whole path against the bare broker, and the soak (docs/benchmarks.md).
loadbench: build
	bin/crowdwatch bench --devices 100 --rate 0 --clients 0 --duration 10s
	bin/crowdwatch bench --devices 100 --rate 0 --clients 0 --duration 10s --broker mosquitto
	bin/crowdwatch bench --devices 200 --rate 10 --clients 500 --zones 200 --duration 20s
	bin/crowdwatch bench --devices 200 --rate 10 --clients 500 --zones 200 --duration 20s --broker mosquitto

SOAK_MINUTES ?= 60
soak:
	.ci/soak $(SOAK_MINUTES)
