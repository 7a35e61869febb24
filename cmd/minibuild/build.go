package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"minibuild/builder"
)

const buildHelp = `Build an image from the Dockerfile in CONTEXT (or -f FILE) and keep it in
the store, tagged with every -t NAME. Each step is looked up in the cache
first; --explain says why the steps that ran were not cached.

Outputs (-o, repeatable, BuildKit syntax):
  type=oci,dest=FILE       an OCI archive ("dest=-": standard output)
  type=docker,dest=FILE    a tarball docker load reads ("dest=-": standard output)
  type=local,dest=DIR      the image's root filesystem (-o DIR is short for it)
  type=registry            push every -t name (same as --push)

Progress (--progress, on standard error):
  auto     tty on a terminal, plain otherwise (the default)
  plain    BuildKit's lines: "#3 [2/5] COPY . /app", "#3 CACHED", "#3 DONE 0.4s"
  tty      live view of the running steps and their last output lines
  quiet    nothing but errors
  rawjson  one JSON object per event (see below), for CI tools

rawjson objects have these fields (omitted when empty):
  time         RFC 3339 time of the event
  kind         start, log, status, cached, done, error, warning; then one
               final "result" (digest, config, tags) or "failure" (error)
  vertex       the "#N" of the step or internal task
  name         its display name, e.g. "[2/5] COPY . /app"
  stage, step, steps   stage name and the step's position in it
  line, line_end       Dockerfile lines of the step or warning
  key          the step's cache key
  stream, data         log: 1 stdout or 2 stderr, and the text
  message, current, total   status and warning text, byte counts
  duration_ms  cached, done, error: time the vertex took
  error        error: what failed ("context canceled": a step stopped
               because another failed first, shown as CANCELED)
  digest, config, tags      result: manifest and config digests, names

Exit codes: 0 built, 1 build failed, 2 bad usage, 3 --expect-cached found
a step that missed the cache, 130 interrupted.`

// keyOptions are the build flags that change cache keys; build and explain
// share them.
type keyOptions struct {
	file          string
	target        string
	buildArgs     []string
	buildContexts []string
	platform      string
	noCacheFilter []string
	noCache       bool   // keys are looked up, but every step misses
	network       string // RUN's network is part of its key
}

// buildOptions are the flags of the build command.
type buildOptions struct {
	keyOptions
	tags         []string
	labels       []string
	pull         pullFlag
	jobs         int
	outputs      []string
	push         bool
	cacheFrom    []string
	cacheTo      []string
	iidfile      string
	metadataFile string
	compression  string
	keyMaterial  string
	insecure     []string
	progress     string
	quiet        bool
	explain      bool
	expectCached bool
}

// addKeyFlags adds the flags of keyOptions to fs.
func addKeyFlags(fs *pflag.FlagSet, k *keyOptions) {
	fs.StringVarP(&k.file, "file", "f", "", `the Dockerfile (default CONTEXT/Dockerfile; "-" reads standard input)`)
	fs.StringVar(&k.target, "target", "", "build this stage (default: the last one)")
	fs.StringArrayVar(&k.buildArgs, "build-arg", nil, "set ARG NAME to VALUE (NAME=VALUE; NAME alone takes it from the environment; repeatable)")
	fs.StringArrayVar(&k.buildContexts, "build-context", nil, "extra build context NAME=DIR|oci-layout://PATH[:TAG]|docker-image://REF (repeatable)")
	fs.StringVar(&k.platform, "platform", "", "target platform os/arch[/variant] (default: the host's)")
	fs.StringSliceVar(&k.noCacheFilter, "no-cache-filter", nil, "do not use the cache for these stages (names or indexes; repeatable, comma-separated)")
	fs.BoolVar(&k.noCache, "no-cache", false, "run every step, using no cached result")
	fs.StringVar(&k.network, "network", "host", "network of RUN steps: host or none")
}

// addBuildFlags makes cmd a build command: the root command builds too, so
// `minibuild -f Dockerfile .` works like `minibuild build -f Dockerfile .`.
func addBuildFlags(cmd *cobra.Command, a *app) {
	o := bindBuildFlags(cmd.Flags())
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if cmd.Parent() == nil && len(args) == 0 && cmd.Flags().NFlag() == 0 {
			return nil // bare `minibuild`: help
		}
		if len(args) != 1 {
			return &usageError{fmt.Errorf("want one CONTEXT directory (e.g. \".\"), got %d arguments", len(args))}
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return runBuild(cmd, a, o, args[0])
	}
}

// bindBuildFlags adds the build flags to fs and returns where they land.
func bindBuildFlags(fs *pflag.FlagSet) *buildOptions {
	o := &buildOptions{pull: pullFlag(builder.PullMissing)}
	addKeyFlags(fs, &o.keyOptions)
	fs.StringArrayVarP(&o.tags, "tag", "t", nil, "name the image NAME[:TAG] in the store (repeatable)")
	fs.StringArrayVar(&o.labels, "label", nil, "add label KEY=VALUE to the image (repeatable)")
	fs.Var(&o.pull, "pull", "when to fetch FROM images from their registry: missing, always or never (--pull alone: always)")
	fs.Lookup("pull").NoOptDefVal = string(builder.PullAlways)
	fs.IntVar(&o.jobs, "jobs", 0, "stages and COPY --link steps to run at once (default: the number of CPUs)")
	fs.StringArrayVarP(&o.outputs, "output", "o", nil, "also write the image here: type=oci|docker,dest=FILE, type=local,dest=DIR, DIR, type=registry (repeatable)")
	fs.BoolVar(&o.push, "push", false, "push the image to the registry of every -t name")
	fs.StringArrayVar(&o.cacheFrom, "cache-from", nil, "read cache records from type=registry,ref=REF or type=local,src=DIR (repeatable)")
	fs.StringArrayVar(&o.cacheTo, "cache-to", nil, "write cache records to type=registry,ref=REF or type=local,dest=DIR, with mode=min|max (repeatable)")
	fs.StringVar(&o.iidfile, "iidfile", "", "write the image ID (the config digest) to FILE")
	fs.StringVar(&o.metadataFile, "metadata-file", "", "write the build result as JSON to FILE")
	fs.StringVar(&o.compression, "compression", "gzip", "compression of new layers: gzip, zstd or none")
	fs.StringVar(&o.keyMaterial, "key-material", "", "write every step's cache key material to FILE (diff two of them to see what changed)")
	fs.StringArrayVar(&o.insecure, "insecure-registry", nil,
		"allow plain HTTP or unverified HTTPS for this registry (host[:port]; repeatable; env "+insecureRegistriesEnv+")")
	fs.StringVar(&o.progress, "progress", "auto", "progress output: auto, plain, tty, quiet or rawjson")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the image digest (progress as with --progress=quiet)")
	fs.BoolVar(&o.explain, "explain", false, "after the build, explain why each step was or was not cached")
	fs.BoolVar(&o.expectCached, "expect-cached", false, "exit 3 if any step missed the cache, listing each with its reason")
	return o
}

func newBuildCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "build [flags] [-f Dockerfile] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Long:  buildHelp,
	}
	addBuildFlags(cmd, a)
	return cmd
}

// pullFlag is --pull: a [builder.PullPolicy], also accepting Docker's
// boolean spelling (true = always, false = missing).
type pullFlag builder.PullPolicy

func (p *pullFlag) String() string { return string(*p) }
func (p *pullFlag) Type() string   { return "policy" }

func (p *pullFlag) Set(v string) error {
	switch v {
	case "missing", "always", "never":
		*p = pullFlag(v)
	case "true":
		*p = pullFlag(builder.PullAlways)
	case "false":
		*p = pullFlag(builder.PullMissing)
	default:
		return fmt.Errorf("want missing, always or never, not %q", v)
	}
	return nil
}

// environ looks up environment variables; tests pass a map.
type environ func(name string) (string, bool)

// request turns the key flags into a build request for context dir. The
// cleanup function removes the temporary copy of a Dockerfile read from
// stdin.
func (k *keyOptions) request(dir string, stdin io.Reader, env environ) (req builder.Request, cleanup func(), err error) {
	cleanup = func() {}
	req = builder.Request{Context: dir, Dockerfile: k.file, Target: k.target}
	if req.BuildArgs, err = parseBuildArgs(k.buildArgs, env); err != nil {
		return req, cleanup, err
	}
	if req.BuildContexts, err = parsePairs("--build-context", k.buildContexts, false); err != nil {
		return req, cleanup, err
	}
	if k.platform != "" {
		if err := checkPlatform(k.platform); err != nil {
			return req, cleanup, err
		}
		req.Platform = k.platform
	}
	for _, s := range k.noCacheFilter {
		if s = strings.TrimSpace(s); s != "" {
			req.NoCacheFilter = append(req.NoCacheFilter, s)
		}
	}
	req.NoCache = k.noCache
	switch k.network {
	case "host", "default", "":
		req.Network = "host"
	case "none":
		req.Network = "none"
	default:
		return req, cleanup, &usageError{fmt.Errorf("--network %q: want host or none", k.network)}
	}
	if k.file == "-" {
		path, err := dockerfileFromStdin(stdin)
		if err != nil {
			return req, cleanup, err
		}
		req.Dockerfile = path
		cleanup = func() { os.RemoveAll(filepath.Dir(path)) }
	}
	return req, cleanup, nil
}

// request is the whole build request, except Progress.
func (o *buildOptions) request(dir string, stdin io.Reader, env environ) (builder.Request, func(), error) {
	req, cleanup, err := o.keyOptions.request(dir, stdin, env)
	if err != nil {
		return req, cleanup, err
	}
	fail := func(err error) (builder.Request, func(), error) {
		cleanup()
		return req, func() {}, &usageError{err}
	}
	req.Tags = o.tags
	req.Pull = builder.PullPolicy(o.pull)
	req.Push = o.push
	if req.Labels, err = parsePairs("--label", o.labels, true); err != nil {
		return fail(err)
	}
	if o.jobs < 0 {
		return fail(fmt.Errorf("--jobs %d: want 0 (the number of CPUs) or more", o.jobs))
	}
	req.Jobs = o.jobs
	switch o.compression {
	case "gzip", "zstd", "none":
		req.Compression = o.compression
	default:
		return fail(fmt.Errorf("--compression %q: want gzip, zstd or none", o.compression))
	}
	for _, s := range o.outputs {
		out, err := parseOutput(s)
		if err != nil {
			return fail(err)
		}
		if out.Type == "registry" {
			req.Push = true
		}
		req.Outputs = append(req.Outputs, out)
	}
	if req.Push && len(req.Tags) == 0 {
		return fail(errors.New("--push and type=registry need a name to push to: add -t NAME"))
	}
	for _, s := range o.cacheFrom {
		c, err := parseCacheSpec("--cache-from", s)
		if err != nil {
			return fail(err)
		}
		req.CacheFrom = append(req.CacheFrom, c)
	}
	for _, s := range o.cacheTo {
		c, err := parseCacheSpec("--cache-to", s)
		if err != nil {
			return fail(err)
		}
		req.CacheTo = append(req.CacheTo, c)
	}
	return req, cleanup, nil
}

// parseBuildArgs reads --build-arg values: NAME=VALUE, or NAME alone for
// the environment's value (skipped when the environment has none, like
// Docker). SOURCE_DATE_EPOCH from the environment is a build arg too, as
// in BuildKit, unless --build-arg sets it.
func parseBuildArgs(vals []string, env environ) (map[string]string, error) {
	args := map[string]string{}
	for _, v := range vals {
		name, value, ok := strings.Cut(v, "=")
		if name == "" {
			return nil, &usageError{fmt.Errorf("--build-arg %q: want NAME=VALUE or NAME", v)}
		}
		if !ok {
			if value, ok = env(name); !ok {
				continue
			}
		}
		args[name] = value
	}
	if _, set := args["SOURCE_DATE_EPOCH"]; !set {
		if v, ok := env("SOURCE_DATE_EPOCH"); ok && v != "" {
			args["SOURCE_DATE_EPOCH"] = v
		}
	}
	if v, ok := args["SOURCE_DATE_EPOCH"]; ok && v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			return nil, &usageError{fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v)}
		}
	}
	if len(args) == 0 {
		return nil, nil
	}
	return args, nil
}

// parsePairs reads NAME=VALUE flag values into a map; with bare, NAME alone
// means an empty value.
func parsePairs(flag string, vals []string, bare bool) (map[string]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, v := range vals {
		name, value, ok := strings.Cut(v, "=")
		if name == "" || (!ok && !bare) || (!bare && value == "") {
			return nil, &usageError{fmt.Errorf("%s %q: want NAME=VALUE", flag, v)}
		}
		m[name] = value
	}
	return m, nil
}

// checkPlatform accepts os/arch[/variant] with non-empty parts.
func checkPlatform(p string) error {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || slices.Contains(parts, "") {
		return &usageError{fmt.Errorf("--platform %q: want os/arch[/variant], e.g. linux/amd64", p)}
	}
	return nil
}

// dockerfileFromStdin copies standard input to a Dockerfile in a new
// temporary directory and returns its path.
func dockerfileFromStdin(r io.Reader) (string, error) {
	dir, err := os.MkdirTemp("", "minibuild-stdin-")
	if err != nil {
		return "", fmt.Errorf("read Dockerfile from standard input: %w", err)
	}
	path := filepath.Join(dir, "Dockerfile")
	f, err := os.Create(path)
	if err == nil {
		_, err = io.Copy(f, r)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("read Dockerfile from standard input: %w", err)
	}
	return path, nil
}

// runBuild builds context dir as o asks and prints the outcome.
func runBuild(cmd *cobra.Command, a *app, o *buildOptions, dir string) (err error) {
	ctx := cmd.Context()
	mode, err := parseProgressMode(o.progress)
	if err != nil {
		return err
	}
	if o.quiet {
		mode = progressQuiet
	}
	req, cleanup, err := o.request(dir, cmd.InOrStdin(), os.LookupEnv)
	defer cleanup()
	if err != nil {
		return err
	}
	stdout := bufio.NewWriterSize(a.stdout, 1<<20)
	archiveOut, err := toStdout(req.Outputs, stdout)
	if err != nil {
		return err
	}
	if archiveOut {
		if o.quiet || o.explain {
			return &usageError{errors.New("--output dest=- writes the image to standard output: it cannot be combined with -q or --explain")}
		}
		if isTerminal(a.stdout) {
			return &usageError{errors.New("--output dest=-: refusing to write an archive to a terminal")}
		}
	}
	if o.keyMaterial != "" {
		f, err := os.Create(o.keyMaterial)
		if err != nil {
			return fmt.Errorf("create %s: %w", o.keyMaterial, err)
		}
		defer func() { err = errors.Join(err, f.Close()) }()
		req.KeyMaterial = f
	}
	p := newProgress(mode, a.stderr)
	req.Progress = p.event
	res, err := buildImage(ctx, a, o.insecure, req)
	p.finish(res, err)
	if err != nil {
		if ctx.Err() != nil {
			return err // main reports the interruption
		}
		file := ""
		if o.file == "-" {
			file = "Dockerfile"
		}
		printBuildError(a.stderr, err, file, p)
		return &exitError{code: exitFailure}
	}
	if err := stdout.Flush(); err != nil {
		return fmt.Errorf("write image to standard output: %w", err)
	}
	return o.report(a, res)
}

// report writes what a successful build produced besides the image:
// --iidfile, --metadata-file, the digest (-q), the explanation and the
// --expect-cached verdict.
func (o *buildOptions) report(a *app, res *builder.Result) error {
	if o.iidfile != "" {
		if err := writeIIDFile(o.iidfile, res); err != nil {
			return err
		}
	}
	if o.metadataFile != "" {
		if err := writeMetadataFile(o.metadataFile, res); err != nil {
			return err
		}
	}
	if o.quiet {
		fmt.Fprintln(a.stdout, res.Manifest.Digest)
	}
	steps := stepsFromResult(res)
	if o.explain {
		if o.progress != string(progressQuiet) && !o.quiet {
			fmt.Fprintln(a.stderr) // set the report apart from the progress
		}
		printExplain(a.stdout, steps)
	}
	if o.expectCached {
		if n := printMissed(a.stderr, steps); n > 0 {
			return &exitError{code: exitNotCached}
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
