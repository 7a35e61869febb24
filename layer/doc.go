// Package layer turns directories into reproducible OCI layers and layers
// back into directories.
//
// It owns the tar format of a layer and nothing around it: no blobs, no
// manifests, no registries, no mounts. Callers hand it a directory and a
// writer ([Diff]) or a reader and a directory ([Apply]); digests come back as
// values.
//
// # Layer format
//
// [Diff] writes what docs/layers-format.md specifies (the contract tests in
// this package check every rule):
//
//   - PAX tar; entries in byte-wise lexical order of their full path, so a
//     parent always precedes its children; the root itself is not an entry.
//   - uid/gid numeric, user and group names empty; no atime/ctime records.
//   - mtime = min(mtime, epoch), epoch = SOURCE_DATE_EPOCH or [DefaultEpoch].
//   - hardlinks by (dev, inode) within the layer: the first path in walk
//     order is the file, later ones are TypeLink entries pointing at it.
//   - xattrs kept as PAX SCHILY.xattr records, except trusted.overlay.* and
//     host-only ones (security.selinux).
//   - device nodes, fifos and sockets-as-skipped (sockets are not
//     representable in tar and are left out).
//   - overlay whiteouts converted to OCI whiteouts (image-spec layer.md,
//     "Whiteouts"): a 0:0 character device or a whiteout xattr becomes an
//     empty regular file `.wh.<name>`; an opaque directory
//     (trusted.overlay.opaque=y or user.overlay.opaque=y) is emitted followed
//     by `<dir>/.wh..wh..opq`. A real file whose name starts with `.wh.` is an
//     error ([ErrReservedName]).
//   - compression: gzip (parallel, byte-identical whatever GOMAXPROCS), zstd,
//     or none; gzip headers carry no name and no time.
//
// [Apply] is the inverse, producing the overlay-native form minibuild keeps as
// snapshots: `.wh.<name>` becomes a 0:0 character device, `.wh..wh..opq` the
// trusted.overlay.opaque=y xattr. Every path is resolved inside the root as in
// a chroot; entries and links that would escape are refused with
// [ErrUnsafePath]. Digests are checked at EOF.
package layer
