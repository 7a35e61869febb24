// Package oci is minibuild's image store: an OCI image layout with tags,
// the unpacked layers (snapshots) builds mount, and the ways images enter
// and leave it (import, save, registries).
//
// It owns the store directory and everything about blobs, manifests,
// configs, indexes and names: writing and verifying blobs, tagging,
// resolving references, reading images through go-containerregistry's
// v1.Image, garbage collection and fsck, and moving images and artifacts
// to and from registries. It refuses to own what is inside a layer or a
// snapshot (package layer makes and applies tars; the store only names,
// renames and deletes snapshot directories), mounts, build order, and the
// build cache's record format (artifacts carry it as opaque bytes).
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
//	  remote/sources.json  where blobs are known to exist besides the store
//	                       (registry repositories, "oci:DIR" layouts); remote/lock
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
//
// # Registries
//
// Images and artifacts move between the store and OCI registries through
// go-containerregistry (remote, authn, name, transport); this package adds
// the store's atomicity, the choice of what to move, and errors that say
// where. [Open]'s options configure it: [WithKeychain] (default
// authn.DefaultKeychain: the Docker config at $DOCKER_CONFIG or ~/.docker,
// with credential helpers), [WithTransport] (default: system CAs, which
// honour SSL_CERT_FILE; proxies from the environment),
// [WithInsecureRegistries] (plain HTTP or unverified HTTPS for registries
// the user names, like Docker's --insecure-registry; the command line
// takes --insecure-registry and MINIBUILD_INSECURE_REGISTRIES) and
// [WithRetryBackoff].
//
//   - [Store.Pull] resolves a name like Docker ([ParseName]), picks the
//     host's (or a requested) platform of a multi-platform index
//     ([HostPlatform], [ParsePlatform]), downloads only the config and
//     layers the store lacks, in parallel, each through an [Ingest] that
//     verifies it, and tags the manifest only when everything is there. The
//     index.json entry records the platform and, in the annotation
//     dev.minibuild.repo-digests, the registry digest the reference
//     resolved to (Docker's RepoDigests).
//   - [Store.ResolveBase] is FROM's resolution under a [PullPolicy]:
//     [PullMissing] answers from index.json when it can, with no network
//     request at all (tags, pins through the recorded repo digests,
//     imported indexes), so a rebuild works offline; [PullAlways] checks a
//     tag with one HEAD request; [PullNever] never asks.
//   - [Store.Push] checks each blob with a HEAD request, mounts it from
//     another repository of the same registry when the store knows one
//     that has it, uploads the rest in parallel, and pushes the manifests
//     (byte for byte, so digests match) last.
//   - Blob sources ([Store.AddBlobSource], [Store.RemoteBlob]) record
//     where blobs exist besides the store. Pulls and pushes record them;
//     a lazy pull ([PullOptions.Lazy]) or an imported cache leaves layers
//     there: an image may refer to a layer known only remotely (fsck and
//     [Store.PutImage] accept it), [Store.FetchBlob] and [Store.FetchImage]
//     bring the bytes when something needs them, and a push to the same
//     registry mounts them without downloading. GC forgets the sources of
//     blobs it does not keep.
//   - Artifacts ([Store.PushArtifact], [Store.FetchArtifact], and
//     [Store.PushArtifactLayout], [Store.FetchArtifactLayout] for an OCI
//     layout directory) are generic transport for the build cache: an
//     OCI 1.1 image manifest with the owner's config media type and blobs
//     as layers. Fetching reads manifest and config only and records the
//     blobs as sources.
//
// Failures: go-containerregistry retries requests that fail with 408,
// 429 or 5xx or lose their connection, with backoff; a download whose
// body breaks midway (which it does not retry) starts again here with a
// fresh ingest. Refused connections, certificate errors, 401, 403, 404 and
// content that does not match its digest fail at once. What comes back is
// a [*RemoteError] naming the operation, registry, repository and digest,
// wrapping [ErrUnauthorized], [ErrNotFound] or [ErrDigestMismatch] when
// they apply. A failed pull tags nothing and leaves no partial blob
// (complete blobs it fetched stay, unreferenced, for the next attempt).
package oci
