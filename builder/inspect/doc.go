// Package inspect looks inside images of the store and rebases them: what
// each instruction put into an image ([Image.History], [Image.DiffLayer],
// [DiffImages]), what it costs ([Image.Bloat]), and how to move an image
// onto a new base without rebuilding it ([PlanRebase]).
//
// It reads images through package oci (manifests, configs, blobs) and
// layers through package layer ([layer.Entries], with OCI whiteouts
// decoded), and writes only through [oci.Store.PutImage] and
// [oci.Store.Tag]. It refuses to own building, mounting or running
// anything, and printing: every function returns data that cmd/minibuild
// formats.
//
// # Merged trees
//
// A layer is applied to the tree of the layers below it as the OCI image
// spec says (layer.md, "Whiteouts"): whiteouts and opaque markers of a
// layer apply to the layers below only, whatever their place in the tar
// stream; then every other entry replaces the path it names (a directory
// keeps the children below it, anything else replacing a directory drops
// them). Files are compared by type, permission bits, owner, content
// (sha256 and size), link target and xattrs; never by mtime, which a
// reproducible build clamps anyway.
//
// # Sizes
//
// Every size is content bytes: the sum of the sizes of regular files (what
// `du --apparent-size` would count), not the tar stream and not the
// compressed blob. Hardlinks, directories, symlinks and whiteouts count 0.
// This is what docker history shows for a layer, what dive adds up, and
// what a user can act on; compressed sizes are reported next to it where
// useful.
//
// # Waste
//
// The bytes of a file in a layer are wasted when a later layer hides them:
// it overwrites the path with other content, deletes it (a whiteout, an
// opaque directory, a directory replaced by a file), or writes the same
// content again with other metadata (a copy-up, as `chmod -R` causes).
// Each hidden version is charged to the layer that hid it, so that the
// step a user has to change is the one named; docs/layers.md walks
// through it.
package inspect
