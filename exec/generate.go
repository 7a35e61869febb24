package exec

// The sandbox init as a program of its own, embedded by builds with the
// embedinit tag (see initprog_linux.go and initbin/README.md). The flags
// make the build reproducible: TestEmbeddedInitIsCurrent rebuilds it and
// compares.
//go:generate env CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-s -o initbin/minibuild-init ./cmd/minibuild-init
