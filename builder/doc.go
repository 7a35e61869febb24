// Package builder turns a Dockerfile into an image: it parses the
// Dockerfile with BuildKit's parser and instruction packages, plans stages
// and steps, and performs the filesystem side of COPY, ADD and WORKDIR.
//
// # What it owns
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
//     location, its canonical expanded instruction and the environment it
//     observes: the inputs of a cache key.
//   - COPY/ADD sources ([Sources], [LoadContext]): globs, symlinks in the
//     source path, .dockerignore (and <Dockerfile>.dockerignore), sources
//     escaping the context refused; ADD URLs downloaded ([Fetch]) with
//     --checksum.
//   - The copier ([Copy], [Mkdir]): BuildKit's copy semantics into a root
//     directory whose symlinks are resolved as in a chroot (openat2
//     RESOLVE_IN_ROOT), --chown names looked up in the destination image,
//     --chmod octal and symbolic, local archives extracted. It runs on the
//     calling goroutine only, so it can run on a locked OS thread in a
//     private mount namespace.
//
// # What it does not own
//
// Tar format and layer digests (package layer), mounts and RUN's process
// (package exec), the image store and registries (package oci), cache key
// hashing and records (package cache), flags and output (cmd). The step
// loop that executes a Plan with those packages builds on this one.
package builder
