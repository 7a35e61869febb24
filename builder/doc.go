// Package builder turns a Dockerfile into an image: it parses the
// Dockerfile with BuildKit's parser and instruction packages, plans stages
// and steps, and executes the plan with the leaf packages — cache keys and
// records (cache), the RUN sandbox and overlay mounts (exec), layers
// (layer) and the image store (oci).
//
// # The frontend
//
//   - Parsing ([Parse]): BuildKit's parser (heredocs, "# escape=",
//     "# syntax=" recorded, "# check=" honoured), typed instructions,
//     errors as [*DockerfileError] with the Dockerfile line range and an
//     excerpt for the CLI to print.
//   - ARG/ENV scoping and expansion with BuildKit's shell lexer, with the
//     same rules and the same choice of expanded words per instruction
//     (RUN's command line is left to the shell): meta ARGs before FROM,
//     --build-arg, the automatic platform args (TARGETPLATFORM, BUILDARCH,
//     …), predefined proxy args (given to RUN, kept out of history and the
//     cache key unless declared), ENV overriding ARG.
//   - Stages ([Plan]): FROM scratch / image / earlier stage / build
//     context, COPY --from by name, index, image or build context, --target,
//     cycle detection, and the set of stages the target needs (Plan.Order);
//     the others are not planned further.
//   - The per-stage state: one image config (deep-copied from the base),
//     history entries written exactly like BuildKit's ("RUN /bin/sh -c make
//     # buildkit", empty_layer for config-only steps), `created` from
//     SOURCE_DATE_EPOCH or [DefaultEpoch], ONBUILD triggers of the base run
//     first. Each instruction is one function in a file of its name
//     (env.go, workdir.go, copy.go, …), each yields one [Step] carrying its
//     location, its key instruction (cache.Instruction) and the state it
//     observes ([StepEnv]): the inputs of a cache key.
//   - COPY/ADD sources ([Sources], [LoadContext]) and the copier ([Copy],
//     [Mkdir]): BuildKit's copy semantics into a root directory whose
//     symlinks are resolved as in a chroot (openat2 RESOLVE_IN_ROOT),
//     .dockerignore, --chown names looked up in the destination image,
//     --chmod, local archives extracted, ADD URLs downloaded ([Fetch]).
//     The copier runs on the calling goroutine only, so it can run on a
//     locked OS thread inside a private mount namespace.
//
// # The engine
//
// [Builder.Build] runs in three phases; the orchestrating code is
// build.go, one file per concern around it (keys.go, context.go,
// schedule.go, snapshot.go, stepcopy.go, steprun.go, commit.go, image.go,
// output.go, explain.go, lint.go, prune.go, runimage.go, registry.go,
// registry_fetch.go, cacheshare.go).
//
//  1. Keys first (keys.go, context.go). Every filesystem step's key is
//     derived before anything runs, following docs/cache.md: parent =
//     the state the previous filesystem step leaves (its key; for COPY
//     --link cache.LinkState of the parent and the link's layer key), or
//     the base image's manifest digest, or scratch, or the FROM stage's
//     result; the key instruction; the observed ENV/ARG/WORKDIR/USER/SHELL;
//     inputs — a COPY/ADD's selected context files (one parallel scan per
//     context through its stat cache, cut to the step's resolved sources,
//     digested and stored with cache.PutFiles), the --from stage's result
//     state or image digest, an ADD URL's checksum or downloaded content;
//     the platform. COPY --link keys its layer without a parent. Then
//     every key is looked up (--no-cache, --no-cache-filter and what they
//     force skip the lookup); a record whose layer blob is gone is a miss.
//  2. Execution (schedule.go). One goroutine per stage, bounded by a
//     semaphore of Request.Jobs slots taken only while a step works (a
//     cache hit needs none; a step waits for the stage it copies from
//     before taking one). A stage waits only for the stages whose files it
//     needs: its FROM stage, and a COPY --from stage when that step
//     misses. COPY --link steps that miss start at stage start, each in a
//     goroutine, next to the steps before them. A miss mounts the overlay
//     of its chain's snapshots (unpacked on demand, once: singleflight in
//     the process, a lock file per snapshot under <root>/locks across
//     processes; more than overlay's 500 layers fails clearly), runs the
//     RUN in the sandbox (exec.Run) or copies with exec.WithRoot /
//     exec.WithRoots (COPY --from mounts the source chain too), then one
//     walk of the upper directory (layer.Diff, normalizing it) writes the
//     blob, the upper is renamed into the store as the layer's snapshot,
//     and the record is written last. An empty upper makes no layer
//     (history empty_layer, like BuildKit).
//  3. Export (image.go, output.go). The target's config (history marked
//     for steps that made no layer, RootFS of the chain, `created` the
//     epoch) and an OCI manifest with the base annotations go into the
//     store, then the tags and the outputs (OCI or docker archive written
//     atomically, or the root filesystem applied into a directory).
//
// A build where every key hits does no mount, no tar, no process and no
// blob write: it reads the Dockerfile, scans the contexts (stat cache),
// looks the keys up, finds the config and manifest already in the store
// (they are functions of the same inputs), and leaves tags that already
// name the image alone. The build log for explanations
// ([Builder.Explain], Result.Steps[].Reason) is rewritten only when it
// changes.
//
// # Registries
//
// Bases named by FROM and COPY --from resolve through
// oci.Store.ResolveBase under Request.Pull: with "missing" a base the
// store has costs no request, so a no-op rebuild works offline. A pull is
// lazy (manifest and config only; registry.go): layer bytes are fetched
// when something reads them. Before execution, fetchLayers
// (registry_fetch.go) works out which layers known only remotely the
// build will read — the chain below each step that runs, the source of a
// COPY --from that runs, every layer for a local or archive output — and
// fetches them in parallel; a fully cached build that stores or pushes its
// image fetches none. --push and --output type=registry push every -t name
// after the other outputs (oci.Store.Push: only missing blobs, mounted
// from the repositories the store knows have them).
//
// Shared caches (cacheshare.go): --cache-from imports, before the
// lookups, the records of the cache whose keys this build needs and the
// local cache cannot answer (an imported record is kept only if its parts
// hash to its key, cache.DecodeExport); their layers stay in the cache's
// repository. --cache-to exports, last, the records of the target's chain
// (mode=min) or of every step (mode=max) and their layers as an OCI
// artifact (docs/cache.md, "Shared cache format"). A cache that cannot be
// read is a warning; a cached layer that cannot be fetched turns its hit
// into a miss; a cache that cannot be written fails the build unless
// ignore-error=true.
//
// # Concurrency and failure
//
// Progress events are delivered one at a time, in order, numbered like
// BuildKit's vertices; a step's vertex starts when the step has its job
// slot. The first failing step cancels the build's context: running
// sandboxes are killed, waiting steps give up, steps stopped that way end
// with an Error event whose Err is context.Canceled (shown as CANCELED),
// and the error returned is that first failure, a *[DockerfileError]
// naming the step ("step 3/7 (Dockerfile:12) RUN make: exit code 2",
// with the exit code and the output's last lines). A failed step leaves no blob, snapshot or
// record, and no mount, process or temp dir: its upper directory is
// deleted. Steps that finished before it keep their records.
//
// # What it does not own
//
// Tar format and layer digests (package layer), mounts and RUN's process
// (package exec), the image store and the registry protocol (package
// oci), cache key hashing, records, the shared cache document, stat
// caches and explanations' wording (package cache), flags and output
// (cmd).
package builder
