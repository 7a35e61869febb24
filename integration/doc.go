// Package integration holds the end-to-end tests of minibuild: they run the
// built binary (MINIBUILD_BIN, which `make test` sets to bin/minibuild; built
// into a temp dir otherwise) against a fresh store and check what a user
// would see. It imports no minibuild package: inputs are made with the
// standard library and outside tools (skopeo, umoci), and results are read
// back through the binary and those tools.
//
// main_test.go is the harness: [Env] gives a test a store root and runs the
// binary in it. fixtures_test.go builds OCI layouts and archives.
package integration
