// Package oci is minibuild's image store: an OCI image layout with tags,
// the unpacked layers (snapshots) builds mount, and the ways images enter
// and leave it (import, save).
//
// It owns the store directory and everything about blobs, manifests,
// configs, indexes and names: writing and verifying blobs, tagging,
// resolving references, reading images through go-containerregistry's
// v1.Image, garbage collection and fsck. It refuses to own what is inside
// a layer or a snapshot (package layer makes and applies tars; the store
// only names, renames and deletes snapshot directories), mounts, and build
// order.
//
// # Layout
//
//	<root>/                mode 0700
//	  oci/                 an OCI image layout: oci-layout, index.json, blobs/sha256/…
//	                       (readable by skopeo, umoci, podman at every moment)
//	  snapshots/<hex>/     one layer unpacked in overlay form, named by its diff ID
//	  ingest/              temp files of blobs and of index.json being written
//	  tmp/<pid>-<rand>/    one dir per process ([Store.TempDir]): build upper/work
//	                       dirs, snapshot staging; same filesystem as snapshots/
//	  trash/               directories being deleted in the background
//	  lock                 flock: shared while a Store is open, exclusive for GC
//	  index.lock           flock: exclusive while index.json is rewritten
//	  cache/               not ours (package cache); never touched here
//
// Tags are index.json entries annotated org.opencontainers.image.ref.name
// with the full normalized name ("docker.io/library/busybox:latest", see
// [ParseName]). An entry without that annotation is an untagged image kept
// alive (an import of an unnamed image). One name maps to one entry.
//
// # Atomicity contract
//
//   - A blob becomes visible only complete and verified: written to a
//     locked file in ingest/, fsynced, checked against its digest and
//     size, renamed into blobs/sha256/, directory fsynced ([Ingest.Commit]).
//     A blob file therefore always holds the bytes its name says.
//   - index.json is replaced, never edited: read, change, write a temp
//     file, fsync, rename, fsync oci/, all under the exclusive index.lock,
//     so concurrent taggers in any number of processes never lose an
//     update and readers never see a partial file.
//   - A blob is in the store before anything refers to it: [Store.PutImage]
//     writes layers' referrers only after checking the layers are there,
//     [Store.Import] verifies a whole input (every blob, media type and
//     reference) before the first rename and writes index.json last. An
//     import that fails leaves nothing; one killed between its renames and
//     its index write leaves unreferenced blobs, which fsck lists as such
//     (not as problems) and GC removes.
//   - A snapshot is a directory written under tmp/, synced (syncfs), then
//     renamed into snapshots/ ([Store.CommitSnapshot]): a snapshot
//     directory is always complete.
//   - Leftovers of a crash (ingest files, tmp/ dirs) are recognized by
//     their flock being free, moved to trash/ by the next [Open] and
//     deleted in the background, never on a command's critical path.
//   - Deletion needs the exclusive store lock ([Store.GC]), so no process
//     can lose a blob or snapshot it is using between writing it and
//     tagging it.
//
// [Store.Fsck] checks all of the above after the fact: it re-hashes every
// blob and follows every reference.
package oci
