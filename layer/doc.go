// Package layer turns directories into reproducible OCI layers and layers
// back into directories.
//
// It owns the tar format of a layer and nothing around it: no blobs, no
// manifests, no registries, no mounts, no environment. Callers hand it a
// directory and a writer ([Diff]) or a reader and a directory ([Apply]);
// digests come back as values ([Descriptor]). docs/layers-format.md is the
// byte-level contract; the tests in this package check each rule.
//
// # Layer format
//
// [Diff] writes:
//
//   - PAX tar, one depth-first walk; in each directory the OCI whiteouts
//     first, then the other entries, each group in byte-wise name order
//     (image-spec layer.md asks for whiteouts before sibling directories);
//     the root itself is not an entry; directory names end in "/".
//   - uid/gid numeric, user and group names empty; no atime/ctime; mtime =
//     min(mtime, epoch) in whole seconds, epoch = SOURCE_DATE_EPOCH as the
//     caller passes it, or [DefaultEpoch].
//   - hardlinks by (dev, inode) within the layer: the first path in walk
//     order is the file, later ones are TypeLink entries pointing at it.
//   - xattrs as PAX SCHILY.xattr records, except trusted.overlay.*,
//     user.overlay.* and security.selinux.
//   - device nodes and fifos kept; sockets left out.
//   - overlay whiteouts converted to OCI whiteouts (image-spec layer.md,
//     "Whiteouts"): a 0:0 character device or a zero-size file with an
//     overlay.whiteout xattr becomes an empty regular file ".wh.<name>"; an
//     opaque directory (overlay.opaque=y, trusted.* or user.*) is followed
//     by "<dir>/.wh..wh..opq". Markers have fixed metadata (mode 0, owner
//     0:0, mtime epoch). A real file named ".wh.*" is [ErrReservedName].
//   - compression: gzip (pgzip with a fixed block size: byte-identical
//     whatever GOMAXPROCS; no name or time in the header), zstd (pinned
//     settings), or none. diffID, digest and sizes come from the same pass.
//
// With [DiffOptions].Normalize the walk also rewrites the directory so it
// equals what [Apply] makes of the layer: that is how an overlay upperdir
// becomes a snapshot without unpacking its layer again.
//
// [Apply] is the inverse. In [OverlayWhiteouts] mode it produces the
// overlay-native form minibuild keeps as snapshots: ".wh.<name>" becomes a
// 0:0 character device, ".wh..wh..opq" the trusted.overlay.opaque=y xattr;
// [MergeWhiteouts] deletes instead, to flatten layers into one tree. Every
// path is resolved inside the root as in a chroot (openat2 with
// RESOLVE_IN_ROOT); names and links that climb out are refused with
// [ErrUnsafePath]. Digests are checked at EOF ([ErrDigestMismatch]) and
// the expanded size is bounded ([ErrTooLarge]).
//
// [Entries] lists a layer's entries with whiteouts decoded, for inspection.
//
// Diff and Apply need Linux; elsewhere they return [ErrUnsupported].
package layer
