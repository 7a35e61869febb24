# minibuild — `make demo` for a first look, `make test` for everything.
SHELL := /bin/bash
GO    := $(shell scripts/ensure-go.sh)
BIN   := $(CURDIR)/bin/minibuild
export GOFLAGS := -buildvcs=false
export MINIBUILD_BIN := $(BIN)

.PHONY: all build test unit integration demo bench fuzz stress vet fmt clean

all: build

# The RUN sandbox's init is built first and embedded (exec/initbin/README.md).
build:
	$(GO) generate ./exec
	$(GO) build -tags embedinit -o $(BIN) ./cmd/minibuild

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Everything, as root: privileged tests fail instead of skipping.
test: build vet
	MINIBUILD_PRIVILEGED=1 $(GO) test -race -timeout 25m ./...

# Unit tests only, as any user (privileged tests skip).
unit:
	$(GO) test ./...

demo: build
	scripts/demo.sh

bench: build
	scripts/bench.sh

fuzz:
	scripts/fuzz.sh

stress: build
	MINIBUILD_PRIVILEGED=1 MINIBUILD_STRESS=1 $(GO) test -timeout 60m ./integration/...

clean:
	rm -rf bin
