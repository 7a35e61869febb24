// Package layertest holds fixtures for tests of package layer and of the
// packages that consume layers: in-memory tar builders ([Tar], [Gzip],
// [Zstd]) and readers ([List]), declarative directory trees ([Build]) and
// snapshots of trees for comparison ([Snapshot]), and an overlay mount
// helper ([MountOverlay]). Only _test.go files import it.
package layertest
