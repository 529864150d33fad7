# relia's build, test and benchmark entry points. `make test` is what CI runs
# (.ci/run); on a fresh Debian machine with only Go it first installs the
# system tools the tests drive for real.

GO        ?= go
BIN       := bin/relia
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)

# Debian packages the test suite runs for real, as "command:package" pairs:
# the package is installed when the command is missing.
TEST_APT_DEPS := promtool:prometheus prometheus:prometheus redis-server:redis-server chromium:chromium taskset:util-linux jq:jq curl:curl pg_lsclusters:postgresql

# Go programs the tests drive as real peers, installed into .tools/bin.
TOXIPROXY_VERSION := v2.5.0
TEST_GO_TOOLS := toxiproxy-cli:github.com/Shopify/toxiproxy/v2/cmd/cli@$(TOXIPROXY_VERSION)

# npm packages the tests drive as real clients when node is on the
# machine, installed into .tools/node (the AI gateway's Node client test).
TEST_NPM_DEPS := openai@7.55.0

.PHONY: all build image schemas test test-deps bench-deps lint bench bench-load bench-gateway bench-fault bench-grpc bench-calls bench-capacity bench-ai bench-llm demo fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/relia

# image builds relia's OCI image from the repository, offline and without
# a container daemon: a static binary (CGO_ENABLED=0) on an empty base
# with a nonroot user, assembled by internal/ociimage into an OCI image
# layout archive that docker load, podman load, skopeo and crane read.
# The same sources give the same image, byte for byte.
IMAGE_REF  ?= ghcr.io/relia-dev/relia:latest
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
IMAGE      := bin/relia-image.tar
CA_CERTS   := $(wildcard /etc/ssl/certs/ca-certificates.crt)
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null)

image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath \
		-ldflags '-s -w -X github.com/relia-dev/relia/internal/buildinfo.Version=$(VERSION)' \
		-o bin/relia-linux-$(IMAGE_ARCH) ./cmd/relia
	$(GO) run ./internal/ociimage/cmd/ociimage -binary bin/relia-linux-$(IMAGE_ARCH) -arch $(IMAGE_ARCH) \
		-ref $(IMAGE_REF) -version '$(VERSION)' $(if $(CA_CERTS),-ca-certs $(CA_CERTS)) -out $(IMAGE)
	@echo "$(IMAGE): $(IMAGE_REF); docker load -i $(IMAGE), podman load -i $(IMAGE), or skopeo copy oci-archive:$(IMAGE) docker://..."

# schemas refreshes the JSON Schemas' field descriptions from the code's
# doc comments and writes docs/schema/ (tests fail while either is stale).
schemas:
	$(GO) generate ./internal/config
	$(GO) build -o $(BIN) ./cmd/relia
	for k in gateway scenario slo experiment api aigateway models prompt; do ./$(BIN) schema $$k > docs/schema/$$k.json || exit 1; done
	./$(BIN) schema > docs/schema/relia.json

# The race detector allocates on its own, so the tests that pin hot paths
# at zero allocations run once more without it. bench is a module of its
# own, which ./... does not reach: its harnesses' tests run last.
test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 -run 'NotAllocate' ./...
	cd bench && $(GO) vet ./... && $(GO) test -race -count=1 ./...

# test-deps installs what is missing and nothing else, so it is quick on a
# machine that already has everything.
test-deps:
	@$(call install_deps,$(TEST_APT_DEPS),$(TEST_GO_TOOLS))
	@if command -v npm >/dev/null 2>&1; then \
		for pkg in $(TEST_NPM_DEPS); do \
			[ -d .tools/node/node_modules/$${pkg%@*} ] || { echo "installing $$pkg into .tools/node"; \
				npm install --prefix .tools/node --no-audit --no-fund --loglevel=error $$pkg >/dev/null || exit 1; }; \
		done; \
	fi

# The peers the benchmark harnesses run beside relia (bench/*).
BENCH_APT_DEPS := nginx:nginx wrk:wrk hey:hey haproxy:haproxy caddy:caddy
BENCH_GO_TOOLS := k6:go.k6.io/k6@v1.8.1 ghz:github.com/bojand/ghz/cmd/ghz@v0.93.0

bench-deps:
	@$(call install_deps,$(BENCH_APT_DEPS),$(BENCH_GO_TOOLS))

# install_deps installs the Debian packages of the "command:package" pairs
# in $(1) whose command is missing, and the "name:module@version" Go
# programs in $(2) that are not yet in .tools/bin.
define install_deps
missing=""; \
for pair in $(1); do \
	cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
done; \
if [ -n "$$missing" ]; then \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	echo "installing Debian packages:$$missing"; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
fi; \
mkdir -p $(TOOLS_BIN); \
for pair in $(2); do \
	name=$${pair%%:*}; mod=$${pair#*:}; \
	if [ ! -x $(TOOLS_BIN)/$$name ]; then \
		echo "installing $$mod as $$name"; \
		tmp=$$(mktemp -d); GOBIN=$$tmp $(GO) install $$mod && mv $$tmp/* $(TOOLS_BIN)/$$name; rm -rf $$tmp; \
	fi; \
done
endef

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

# bench runs relia's comparison benchmarks against the peer libraries in
# the same run, pinned to one core; docs/benchmarks.md holds the figures.
# Serial figures use one pinned core (-cpu=1); parallel ones two (-cpu=2).
bench:
	cd bench && taskset -c 0,1 $(GO) test -run='^$$' -bench='Breaker|Pipeline5' -benchmem -count=5 -cpu=1,2 . | tee ../bench-resilience.txt
	taskset -c 0,1 $(GO) test -run='^$$' -bench=Record -benchmem -count=5 -cpu=1,2 ./outcome/ | tee bench-outcome.txt

# The harnesses against wrk, hey, nginx, haproxy and Toxiproxy; each pins
# cores itself and prints ratios (docs/benchmarks.md).
bench-load: bench-deps
	cd bench && $(GO) run ./load -duration 10s -rounds 3

bench-gateway: bench-deps
	cd bench && $(GO) run ./gateway -duration 5s -rounds 3

bench-fault: bench-deps
	cd bench && $(GO) run ./fault -duration 5s -rounds 5

# bench-grpc: relia's gRPC load against ghz on one server, pinned cores.
bench-grpc: bench-deps
	cd bench && $(GO) run ./grpc -duration 10s -rounds 3

# bench-calls: the call store's ingest on one core, a day's aggregates
# over ten million calls, and the gateway with the store on against off,
# also through a 10s store outage (docs/api-management.md).
bench-calls:
	cd bench && GOMAXPROCS=1 taskset -c 0 $(GO) run ./calls ingest -n 1000000
	cd bench && $(GO) run ./calls aggregate -n 10000000
	cd bench && $(GO) run ./calls gateway -duration 20s -vus 50 -rounds 5
	cd bench && $(GO) run ./calls gateway -duration 20s -vus 50 -fail 10s

# bench-capacity: the USL's prediction at a concurrency left out of the
# fit against the measured throughput of examples/backend on one core.
bench-capacity:
	cd bench && $(GO) run ./capacity -step 10s

# bench-ai: relia's AI gateway beside Portkey's (npx @portkey-ai/gateway)
# in front of relia ai mock, the gateways alone on CPU 1.
bench-ai: bench-deps
	cd bench && $(GO) run ./ai -duration 10s -rounds 3

# bench-llm: relia load llm against relia ai mock (its own process on CPU
# 1): p50 time to first token and token gaps beside the mock's pacing
# (goal 2 ms), token counts (exact), and RSS with 5,000 streams open
# (goal 250 MB).
bench-llm:
	cd bench && $(GO) run ./llm -duration 20s -streams 5000 -hold 15s

# demo runs the README's main-job command: the Black Friday experiment on
# the embedded shop, about a minute, report in ./relia-demo-<time>.
demo: build
	./$(BIN) demo

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list='^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=20s $$pkg || exit 1; \
		done; \
	done

clean:
	rm -rf bin .tools bench-*.txt
