package builder

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	bt "minibuild/builder/buildertest"
)

func file(p, data string, mode uint32) bt.Entry { return bt.File(p, data, mode) }
func dir(p string, mode uint32) bt.Entry        { return bt.Dir(p, mode) }
func link(p, target string) bt.Entry            { return bt.Symlink(p, target) }
func df(lines ...string) string                 { return strings.Join(lines, "\n") + "\n" }

// withDockerfile prepends the Dockerfile entry COPY . copies along.
func withDockerfile(dockerfile string, entries ...bt.Entry) []bt.Entry {
	return append([]bt.Entry{file("Dockerfile", dockerfile, 0o600)}, entries...)
}

// usersImage has an /etc/passwd and /etc/group for --chown and USER names.
func usersImage() []bt.Entry {
	return []bt.Entry{
		dir("etc", 0o755),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"+
			"user:x:1000:1000::/home/user:/bin/sh\nuser01:x:1001:1001::/home/user01:/bin/sh\n"+
			"testuser:x:1002:2000::/home/testuser:/bin/sh\n", 0o644),
		file("etc/group", "root:x:0:\ndaemon:x:1:\nuser:x:1000:\nuser01:x:1001:\ntestgroup:x:2000:testuser\nnobody:x:65534:\n", 0o644),
	}
}

// copyCases is the COPY/ADD semantics table. Context files use BuildKit's
// test modes (0600 files, 0700 directories); directories Copy creates are
// 0755 root-owned.
//
// Each case names the BuildKit test it is ported from and, in its buildah
// field, how it compared with buildah 1.28 (TestCopyCasesAgainstBuildah):
// 29 trees and 3 errors are the same; the other cases use features
// buildah 1.28 lacks (--link, --parents, --exclude, --checksum, --unpack,
// heredocs, symbolic --chmod) or show a known divergence, where BuildKit's
// behaviour (its tests and its fsutil copier) is the reference.
func copyCases(t *testing.T) []copyCase {
	tarFoo := string(tarBytes(t, tarFile("foo", "content0", 0o644)))
	tarBar := string(tarBytes(t, tarFile("bar", "content1", 0o644)))
	tarGz := string(gzipBytes(t, []byte(tarFoo)))
	sum := sha256.Sum256([]byte("content1"))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	cases := []copyCase{
		{
			name: "empty destination is the workdir", from: "testEmptyDestDir",
			context:    []bt.Entry{file("testfile", "contents0", 0o600)},
			dockerfile: df("FROM scratch", `ENV empty=""`, "COPY testfile $empty"),
			want:       []bt.Entry{file("testfile", "contents0", 0o600)},
			buildah:    "same",
		},
		{
			name: "trailing slash makes a directory", from: "testPreserveDestDirSlash",
			context:    []bt.Entry{file("testfile", "contents0", 0o600)},
			dockerfile: df("FROM scratch", "COPY testfile /sample/"),
			want:       []bt.Entry{dir("sample", 0o755), file("sample/testfile", "contents0", 0o600)},
			buildah:    "same",
		},
		{
			name: "dot destination with --link", from: "testCopyLinkDotDestDir, testCopyLinkEmptyDestDir",
			context:    []bt.Entry{file("testfile", "contents0", 0o600)},
			dockerfile: df("FROM scratch", "WORKDIR /var/www", "COPY --link testfile .", `ENV empty=""`, "COPY --link testfile b$empty"),
			want: []bt.Entry{dir("var", 0o755), dir("var/www", 0o755), file("var/www/b", "contents0", 0o600),
				file("var/www/testfile", "contents0", 0o600)},
			buildah: "buildah 1.28 has no COPY --link",
		},
		{
			name: "--from keeps owners, created dirs are root's", from: "testCopyChownExistingDir (copy_from)",
			images: map[string][]bt.Entry{
				"source": {file("file", "", 0o644).Owned(100, 200), dir("dir", 0o755).Owned(100, 200),
					dir("dir/subdir", 0o755).Owned(101, 201), file("dir/subdir/nestedfile", "", 0o644).Owned(102, 202)},
				"testbase": {dir("existingdir", 0o755).Owned(500, 600), dir("existingdir/existingsubdir", 0o755).Owned(501, 601),
					file("existingdir/existingfile", "", 0o644).Owned(501, 601)},
			},
			dockerfile: df("FROM source AS source", "FROM testbase", "COPY --from=source /file .",
				"COPY --from=source /dir /dir", "COPY --from=source /dir/. /existingdir"),
			want: []bt.Entry{
				dir("dir", 0o755), dir("dir/subdir", 0o755).Owned(101, 201), file("dir/subdir/nestedfile", "", 0o644).Owned(102, 202),
				dir("existingdir", 0o755).Owned(500, 600), file("existingdir/existingfile", "", 0o644).Owned(501, 601),
				dir("existingdir/existingsubdir", 0o755).Owned(501, 601), dir("existingdir/subdir", 0o755).Owned(101, 201),
				file("existingdir/subdir/nestedfile", "", 0o644).Owned(102, 202), file("file", "", 0o644).Owned(100, 200),
			},
			buildah: "same",
		},
		{
			name: "--from with --chown", from: "testCopyChownExistingDir (copy_from_chowned)",
			images: map[string][]bt.Entry{
				"source": {file("file", "", 0o644).Owned(100, 200), dir("dir", 0o755).Owned(100, 200),
					dir("dir/subdir", 0o755).Owned(101, 201), file("dir/subdir/nestedfile", "", 0o644).Owned(102, 202)},
				"testbase": {dir("existingdir", 0o755).Owned(500, 600), dir("existingdir/existingsubdir", 0o755).Owned(501, 601),
					file("existingdir/existingfile", "", 0o644).Owned(501, 601)},
			},
			dockerfile: df("FROM source AS source", "FROM testbase", "COPY --from=source --chown=300:400 /file .",
				"COPY --from=source --chown=300:400 /dir /dir", "COPY --from=source --chown=300:400 /dir/. /existingdir"),
			want: []bt.Entry{
				dir("dir", 0o755).Owned(300, 400), dir("dir/subdir", 0o755).Owned(300, 400), file("dir/subdir/nestedfile", "", 0o644).Owned(300, 400),
				dir("existingdir", 0o755).Owned(500, 600), file("existingdir/existingfile", "", 0o644).Owned(501, 601),
				dir("existingdir/existingsubdir", 0o755).Owned(501, 601), dir("existingdir/subdir", 0o755).Owned(300, 400),
				file("existingdir/subdir/nestedfile", "", 0o644).Owned(300, 400), file("file", "", 0o644).Owned(300, 400),
			},
			buildah: "same",
		},
		{
			name: "--chown names and expansion create the destination", from: "testCopyChownCreateDest",
			images:     map[string][]bt.Entry{"users": usersImage()},
			dockerfile: df("FROM users", "ARG group", "ENV owner user01", "COPY --chown=user:user . /dest", "COPY --chown=${owner}:${group} . /dest01"),
			args:       map[string]string{"group": "user"},
			want: append(usersImage(),
				dir("dest", 0o755).Owned(1000, 1000), file("dest/Dockerfile", "{{DOCKERFILE}}", 0o600).Owned(1000, 1000),
				dir("dest01", 0o755).Owned(1001, 1000), file("dest01/Dockerfile", "{{DOCKERFILE}}", 0o600).Owned(1001, 1000)),
			buildah: "same",
		},
		{
			name: "symlink in the source path", from: "testCopyThroughSymlinkContext",
			context:    []bt.Entry{link("link", "sub"), dir("sub", 0o700), file("sub/foo", "contents", 0o600)},
			dockerfile: df("FROM scratch", "COPY link/foo ."),
			want:       []bt.Entry{file("foo", "contents", 0o600)},
			buildah:    "same",
		},
		{
			name: "absolute symlinks in a stage resolve in its root", from: "testCopyThroughSymlinkMultiStage",
			images: map[string][]bt.Entry{"build": {dir("out", 0o755), dir("out/sub", 0o755), file("out/sub/foo", "data", 0o644),
				link("sub", "/out/sub"), link("sub2", "out/sub")}},
			dockerfile: df("FROM build AS build", "FROM scratch", "COPY --from=build /sub/foo .", "COPY --from=build /sub2/foo bar"),
			want:       []bt.Entry{file("bar", "data", 0o644), file("foo", "data", 0o644)},
			buildah:    "same",
		},
		{
			name: "symlinks inside a copied dir stay symlinks", from: "testCopySymlinks",
			context:    []bt.Entry{file("bar", "bar-contents", 0o600), dir("foo", 0o700), link("foo/sub", "../bar")},
			dockerfile: df("FROM scratch", "COPY foo /", "COPY foo/sub bar"),
			want:       []bt.Entry{file("bar", "bar-contents", 0o600), link("sub", "../bar")},
			buildah:    "same",
		},
		{
			name: "named and globbed symlinks are followed", from: "testCopyFollowAllSymlinks",
			context: []bt.Entry{file("bar", "bar-contents", 0o600), link("foo", "bar"), dir("sub", 0o700),
				file("sub/lfile", "lfile-contents", 0o600), link("sub/l0", "subfile"), file("sub/subfile", "subfile-contents", 0o600),
				link("sub/l1", "second"), link("sub/second", "baz"), file("sub/baz", "baz-contents", 0o600)},
			dockerfile: df("FROM scratch", "COPY foo /", "COPY sub/l* alllinks/"),
			want: []bt.Entry{dir("alllinks", 0o755), file("alllinks/l0", "subfile-contents", 0o600), file("alllinks/l1", "baz-contents", 0o600),
				file("alllinks/lfile", "lfile-contents", 0o600), file("foo", "bar-contents", 0o600)},
			buildah: "same",
		},
		{
			name: "--chown forms", from: "testCopyChown",
			images:  map[string][]bt.Entry{"users": usersImage()},
			context: []bt.Entry{file("foo", "foo-contents", 0o600), dir("bar", 0o700), file("bar/sub", "", 0o600)},
			dockerfile: df("FROM users", "ENV owner 1002", "COPY --chown=daemon foo /", "COPY --chown=testuser: foo /defaultgroup",
				"COPY --chown=1002: foo /numericgroup", "COPY --chown=1002:nobody bar /baz", "ARG group", "COPY --chown=${owner}:${group} foo /foobis"),
			args: map[string]string{"group": "nobody"},
			want: append(usersImage(),
				dir("baz", 0o755).Owned(1002, 65534), file("baz/sub", "", 0o600).Owned(1002, 65534),
				file("defaultgroup", "foo-contents", 0o600).Owned(1002, 2000), file("foo", "foo-contents", 0o600).Owned(1, 1),
				file("foobis", "foo-contents", 0o600).Owned(1002, 65534), file("numericgroup", "foo-contents", 0o600).Owned(1002, 1002)),
			buildah: "same",
		},
		{
			name: "octal --chmod, parents created with it", from: "testCopyChmod",
			context: []bt.Entry{file("foo", "foo-contents", 0o600), file("bar", "bar-contents", 0o700)},
			dockerfile: df("FROM scratch", "COPY --chmod=0644 foo /", "COPY --chmod=777 bar /baz", "COPY --chmod=0 foo /foobis",
				"COPY --chmod=777 foo /parent/foo", "COPY --chmod=770 foo /parent/sub/foo", "ARG mode", "COPY --chmod=${mode} foo /footer"),
			args: map[string]string{"mode": "755"},
			want: []bt.Entry{file("baz", "bar-contents", 0o777), file("foo", "foo-contents", 0o644), file("foobis", "foo-contents", 0),
				file("footer", "foo-contents", 0o755), dir("parent", 0o777), file("parent/foo", "foo-contents", 0o777),
				dir("parent/sub", 0o770), file("parent/sub/foo", "foo-contents", 0o770)},
			buildah: "buildah creates missing parents 0755 whatever --chmod says",
		},
		{
			name: "symbolic --chmod on files and directories", from: "testChmodNonOctal",
			context: []bt.Entry{file("file", "", 0o666), dir("dirs", 0o755), dir("dirs/d1", 0o755), dir("dirs/d1/d1", 0o124),
				dir("dirs/d2", 0o755), dir("dirs/d2/d2", 0o124), dir("dirs/d3", 0o755), dir("dirs/d3/d3", 0o124)},
			dockerfile: df("FROM scratch", "COPY --chmod=go-w file /f1", "COPY --chmod=u=rw,g=r,o=r file /f2", "COPY --chmod=a+X file /f3",
				"COPY --chmod=go-w dirs/d1 /", "COPY --chmod=u+rw,g+r,o-x,o+w dirs/d2 /", "COPY --chmod=a+X dirs/d3 /"),
			want: []bt.Entry{dir("d1", 0o104), dir("d2", 0o766), dir("d3", 0o135),
				file("f1", "", 0o644), file("f2", "", 0o644), file("f3", "", 0o666)},
			buildah: "buildah 1.28 accepts only octal --chmod",
		},
		{
			name: "copying twice overwrites", from: "testCopyOverrideFiles",
			context: []bt.Entry{dir("sub", 0o700), dir("sub/dir1", 0o700), dir("sub/dir1/dir2", 0o700), file("sub/dir1/dir2/foo", "foo-contents", 0o600),
				dir("files", 0o700), file("files/foo.go", "foo.go-contents", 0o600)},
			dockerfile: df("FROM scratch", "COPY sub sub", "COPY sub sub", "COPY files/foo.go dest/foo.go", "COPY files/foo.go dest/foo.go", "COPY files dest"),
			want: []bt.Entry{dir("dest", 0o755), file("dest/foo.go", "foo.go-contents", 0o600), dir("sub", 0o755), dir("sub/dir1", 0o700),
				dir("sub/dir1/dir2", 0o700), file("sub/dir1/dir2/foo", "foo-contents", 0o600)},
			buildah: "same",
		},
		{
			name: "variable in the source", from: "testCopyVarSubstitution",
			context:    []bt.Entry{file("bar", "bar-contents", 0o600)},
			dockerfile: df("FROM scratch", "ENV FOO bar", "COPY $FOO baz"),
			want:       []bt.Entry{file("baz", "bar-contents", 0o600)},
			buildah:    "same",
		},
	}
	cases = append(cases, copyCasesWildcards()...)
	cases = append(cases, copyCasesAdd(tarFoo, tarBar, tarGz, digest, t)...)
	cases = append(cases, copyCasesMore()...)
	return cases
}

func copyCasesWildcards() []copyCase {
	wildDF := df("FROM scratch", "COPY *.go /gofiles/", "COPY f*.go foo2.go", "COPY sub/* /subdest/", "COPY sub/*/dir2/foo /subdest2/",
		"COPY sub/*/dir2/foo /subdest3/bar", "COPY . all/", "COPY sub/dir1/ subdest4", "COPY sub/dir1/. subdest5", "COPY sub/dir1 subdest6")
	sub := func(p string) []bt.Entry {
		return []bt.Entry{dir(p+"/dir2", 0o700), file(p+"/dir2/foo", "foo-contents", 0o600)}
	}
	want := []bt.Entry{dir("all", 0o755), file("all/Dockerfile", wildDF, 0o600), file("all/bar.go", "bar-contents", 0o600),
		file("all/foo.go", "foo-contents", 0o600), dir("all/sub", 0o700), dir("all/sub/dir1", 0o700), dir("all/sub/dir1/dir2", 0o700),
		file("all/sub/dir1/dir2/foo", "foo-contents", 0o600), file("foo2.go", "foo-contents", 0o600),
		dir("gofiles", 0o755), file("gofiles/bar.go", "bar-contents", 0o600), file("gofiles/foo.go", "foo-contents", 0o600),
		dir("subdest", 0o755)}
	want = append(want, sub("subdest")...)
	want = append(want, dir("subdest2", 0o755), file("subdest2/foo", "foo-contents", 0o600),
		dir("subdest3", 0o755), file("subdest3/bar", "foo-contents", 0o600), dir("subdest4", 0o755))
	want = append(want, sub("subdest4")...)
	want = append(want, dir("subdest5", 0o755))
	want = append(want, sub("subdest5")...)
	want = append(want, dir("subdest6", 0o755))
	want = append(want, sub("subdest6")...)
	relDF := df("FROM scratch", "WORKDIR /test1", "WORKDIR test2", "COPY foo ./", "ADD foo ./bar/baz", "COPY foo ./bar/baz2",
		"WORKDIR ..", "COPY foo ./", "COPY foo /test3/", "WORKDIR /test4", "COPY . .", "WORKDIR /test5/test6", "COPY foo ../")
	return []copyCase{
		{
			name: "wildcards, dir contents and trailing slashes", from: "testCopyWildcards",
			context: []bt.Entry{file("foo.go", "foo-contents", 0o600), file("bar.go", "bar-contents", 0o600), dir("sub", 0o700),
				dir("sub/dir1", 0o700), dir("sub/dir1/dir2", 0o700), file("sub/dir1/dir2/foo", "foo-contents", 0o600)},
			dockerfile: wildDF,
			want:       want,
			buildah:    "same",
		},
		{
			name: "destinations relative to WORKDIR", from: "testCopyRelative",
			context:    []bt.Entry{file("foo", "hello", 0o600)},
			dockerfile: relDF,
			want: []bt.Entry{dir("test1", 0o755), file("test1/foo", "hello", 0o600), dir("test1/test2", 0o755), dir("test1/test2/bar", 0o755),
				file("test1/test2/bar/baz", "hello", 0o600), file("test1/test2/bar/baz2", "hello", 0o600), file("test1/test2/foo", "hello", 0o600),
				dir("test3", 0o755), file("test3/foo", "hello", 0o600), dir("test4", 0o755), file("test4/Dockerfile", relDF, 0o600),
				file("test4/foo", "hello", 0o600), dir("test5", 0o755), file("test5/foo", "hello", 0o600), dir("test5/test6", 0o755)},
			buildah: "same",
		},
		{
			name: "unicode and escaped names", from: "testCopyUnicodePath",
			context: []bt.Entry{file("test-äöü.txt", "foo", 0o644), file("test-%C3%A4%C3%B6%C3%BC.txt", "bar", 0o644),
				file("test+aou.txt", "baz", 0o644)},
			dockerfile: df("FROM scratch", "COPY test-äöü.txt /", "COPY test-%C3%A4%C3%B6%C3%BC.txt /", "COPY test+aou.txt /"),
			want: []bt.Entry{file("test+aou.txt", "baz", 0o644),
				file("test-%C3%A4%C3%B6%C3%BC.txt", "bar", 0o644), file("test-äöü.txt", "foo", 0o644)},
			buildah: "same",
		},
		{
			name: "escaped glob characters", from: "reference: ADD/COPY pattern matching (arr[[]0].txt)",
			context:    []bt.Entry{file("arr[0].txt", "arr", 0o644)},
			dockerfile: df("FROM scratch", "COPY arr[[]0].txt /"),
			want:       []bt.Entry{file("arr[0].txt", "arr", 0o644)},
			buildah:    "buildah 1.28 does not match escaped brackets",
		},
		{
			name: "an empty wildcard next to a match", from: "testEmptyWildcard",
			context:    []bt.Entry{file("foo", "contents0", 0o600)},
			dockerfile: df("FROM scratch", "COPY foo nomatch* /"),
			want:       []bt.Entry{file("foo", "contents0", 0o600)},
			buildah:    "same",
		},
		{
			name: ".dockerignore with an exception", from: "testDockerignore",
			context: []bt.Entry{file("foo", "foo-contents", 0o600), file("bar", "bar-contents", 0o600), file("baz", "baz-contents", 0o600),
				file("bay", "bay-contents", 0o600), file(".dockerignore", "ba*\nDockerfile\n!bay\n.dockerignore\n", 0o600)},
			dockerfile: df("FROM scratch", "COPY . ."),
			want:       []bt.Entry{file("bay", "bay-contents", 0o600), file("foo", "foo-contents", 0o600)},
			buildah:    "same",
		},
		{
			name: "<Dockerfile>.dockerignore overrides .dockerignore", from: "testDockerignoreOverride",
			context: []bt.Entry{file("Dockerfile.dockerignore", "bar\n", 0o600), file(".dockerignore", "foo\n", 0o600),
				file("foo", "contents0", 0o600), file("bar", "contents0", 0o600)},
			dockerfile: df("FROM scratch", "COPY . ."),
			want: []bt.Entry{file(".dockerignore", "foo\n", 0o600), file("Dockerfile", df("FROM scratch", "COPY . ."), 0o600),
				file("Dockerfile.dockerignore", "bar\n", 0o600), file("foo", "contents0", 0o600)},
			buildah: "same",
		},
	}
}

func copyCasesAdd(tarFoo, tarBar, tarGz, digest string, t *testing.T) []copyCase {
	implied := string(tarBytes(t, tarDir("etc/dnf/", 0o755), tarFile("etc/dnf/dnf.conf", "content0", 0o644)))
	rootfs := string(tarBytes(t, tarDir("run/", 0o755), tarDir("var/", 0o755),
		tarEntry{hdr: tarHeader("var/run", tar.TypeSymlink, "/run", 0o777)}))
	payload := string(tarBytes(t, tarDir("var/run/act/", 0o755), tarDir("var/run/act/actions/", 0o755),
		tarDir("var/run/act/actions/broad/", 0o755), tarDir("var/run/act/actions/broad/.git/", 0o755),
		tarFile("var/run/act/actions/broad/.git/HEAD", "ref: refs/heads/main\n", 0o644),
		tarEntry{hdr: tarHeader("var/run/act/actions/broad/.git/HEAD.link", tar.TypeLink, "var/run/act/actions/broad/.git/HEAD", 0o644)}))
	foo := func(p string) []bt.Entry { return []bt.Entry{dir(p, 0o755), file(p+"/foo", "content0", 0o644)} }
	var compressed []bt.Entry
	var compressedWant []bt.Entry
	for _, tool := range []string{"bzip2", "xz", "zstd"} {
		compressed = append(compressed, file("t.tar."+tool, string(compressWith(t, tool, []byte(tarFoo))), 0o600))
		compressedWant = append(compressedWant, foo(tool)...)
	}
	return []copyCase{
		{
			name: "ADD extracts tar and tar.gz", from: "testDockerfileAddArchive",
			context:    []bt.Entry{file("t.tar", tarFoo, 0o600), file("t.tar.gz", tarGz, 0o600)},
			dockerfile: df("FROM scratch", "ADD t.tar /", "ADD t.tar.gz /gz/"),
			want:       append([]bt.Entry{file("foo", "content0", 0o644)}, foo("gz")...),
			buildah:    "same",
		},
		{
			name: "ADD detects bzip2, xz and zstd by content", from: "testDockerfileAddArchive (zstd), reference: ADD local tar archives",
			context:    compressed,
			dockerfile: df("FROM scratch", "ADD t.tar.bzip2 /bzip2", "ADD t.tar.xz /xz", "ADD t.tar.zstd /zstd"),
			want:       compressedWant,
			buildah:    "same",
		},
		{
			name: "ADD --unpack=false and COPY keep archives", from: "testDockerfileAddArchive (unpack=false, COPY)",
			context:    []bt.Entry{file("t.tar.gz", tarGz, 0o600)},
			dockerfile: df("FROM scratch", "ADD --unpack=false t.tar.gz /a/", "COPY t.tar.gz /c/"),
			want:       []bt.Entry{dir("a", 0o755), file("a/t.tar.gz", tarGz, 0o600), dir("c", 0o755), file("c/t.tar.gz", tarGz, 0o600)},
			buildah:    "buildah 1.28 has no ADD --unpack",
		},
		{
			name: "archive parents are implied", from: "testDockerfileAddArchiveWithImpliedParentDir",
			context:    []bt.Entry{file("t.tar", implied, 0o600)},
			dockerfile: df("FROM scratch", "ADD t.tar /"),
			want:       []bt.Entry{dir("etc", 0o755), dir("etc/dnf", 0o755), file("etc/dnf/dnf.conf", "content0", 0o644)},
			buildah:    "same",
		},
		{
			name: "archive entries through an absolute symlink", from: "testDockerfileAddArchiveThroughAbsoluteSymlink",
			context:    []bt.Entry{file("rootfs.tar", rootfs, 0o600), file("payload.tar", payload, 0o600)},
			dockerfile: df("FROM scratch", "ADD rootfs.tar /", "ADD payload.tar /"),
			want: []bt.Entry{dir("run", 0o755), dir("run/act", 0o755), dir("run/act/actions", 0o755), dir("run/act/actions/broad", 0o755),
				dir("run/act/actions/broad/.git", 0o755), file("run/act/actions/broad/.git/HEAD", "ref: refs/heads/main\n", 0o644),
				bt.Hardlink("run/act/actions/broad/.git/HEAD.link", "run/act/actions/broad/.git/HEAD"),
				dir("var", 0o755), link("var/run", "/run")},
			buildah: "same",
		},
		{
			name: "ADD --chown applies to the archive", from: "testDockerfileAddChownArchive",
			context:    []bt.Entry{file("t.tar", tarFoo, 0o600)},
			dockerfile: df("FROM scratch", "ADD --chown=100:200 t.tar /out/"),
			want:       []bt.Entry{dir("out", 0o755).Owned(100, 200), file("out/foo", "content0", 0o644).Owned(100, 200)},
			buildah:    "buildah keeps the archive's owners; BuildKit's test asserts 100:200",
		},
		{
			name: "ADD of several archives by wildcard", from: "testDockerfileAddArchiveWildcard",
			context:    []bt.Entry{file("t.tar", tarFoo, 0o600), file("b.tar", tarBar, 0o600)},
			dockerfile: df("FROM scratch", "ADD *.tar /dest"),
			want:       []bt.Entry{dir("dest", 0o755), file("dest/bar", "content1", 0o644), file("dest/foo", "content0", 0o644)},
			buildah:    "same",
		},
		{
			name: "ADD from a URL", from: "testDockerfileADDFromURL, testDockerfileAddArchive (URL not extracted)",
			dockerfile: df("FROM scratch", "ADD {{URL}}/foo /dest/", "ADD {{URL}}/t.tar.gz /", "ADD {{URL}}/t.tar.gz /newname.tar.gz"),
			want: []bt.Entry{dir("dest", 0o755), file("dest/foo", "content1", 0o600), file("newname.tar.gz", tarGz, 0o600),
				file("t.tar.gz", tarGz, 0o600)},
			buildah: "same",
		},
		{
			name: "ADD --unpack=true of a URL", from: "testDockerfileAddArchive (--unpack=true)",
			dockerfile: df("FROM scratch", "ADD --unpack=true {{URL}}/t.tar.gz /unpacked/"),
			want:       []bt.Entry{dir("unpacked", 0o755), file("unpacked/foo", "content0", 0o644)},
			buildah:    "buildah 1.28 has no ADD --unpack",
		},
		{
			name: "ADD URL with --chmod", from: "testAddURLChmod",
			images: map[string][]bt.Entry{"busybox": {dir("tmp", 0o1777)}},
			dockerfile: df("FROM busybox", "ADD --chmod=644 {{URL}}/foo /tmp/foo1", "ADD --chmod=755 {{URL}}/foo /tmp/foo2",
				"ADD --chmod=0413 {{URL}}/foo /tmp/foo3", "ARG mode", "ADD --chmod=${mode} {{URL}}/foo /tmp/foo4"),
			args: map[string]string{"mode": "400"},
			want: []bt.Entry{dir("tmp", 0o1777), file("tmp/foo1", "content1", 0o644), file("tmp/foo2", "content1", 0o755),
				file("tmp/foo3", "content1", 0o413), file("tmp/foo4", "content1", 0o400)},
			buildah: "same",
		},
		{
			name: "ADD --checksum from ENV", from: "testAddChecksum (Valid, DigestFromEnv)",
			dockerfile: df("FROM scratch", "ENV DIGEST="+digest, "ENV LINK={{URL}}/foo", "ADD --checksum=${DIGEST} ${LINK} /tmp/foo"),
			want:       []bt.Entry{dir("tmp", 0o755), file("tmp/foo", "content1", 0o600)},
			buildah:    "buildah 1.28 has no ADD --checksum",
		},
		{
			name: "ADD --checksum mismatch", from: "testAddChecksum (DigestMismatch)",
			dockerfile: df("FROM scratch", "ADD --checksum=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 {{URL}}/foo /tmp/foo"),
			wantErr:    "digest mismatch", wantLine: 2,
			buildah: "buildah 1.28 has no ADD --checksum",
		},
	}
}

func tarHeader(name string, typ byte, linkname string, mode int64) tar.Header {
	return tar.Header{Name: name, Typeflag: typ, Linkname: linkname, Mode: mode}
}

func copyCasesMore() []copyCase {
	heredocDF := df("FROM users", "WORKDIR /dest", "COPY <<EOF single", "single file", "EOF",
		"COPY <<EOF <<EOF2 double/", "first file", "EOF", "second file", "EOF2",
		"COPY --chmod=777 <<EOF /permfiles/all", "dummy content", "EOF",
		"COPY --chmod=0644 <<EOF /permfiles/rw", "dummy content", "EOF",
		"COPY --chown=user:user <<EOF /permfiles/owned", "dummy content", "EOF")
	symbolsDF := df("FROM scratch", "COPY <<EOF quotefile", `"quotes in file"`, "EOF",
		"COPY <<EOF slashfile1", `\`, "EOF", "COPY <<EOF slashfile2", `\\`, "EOF", "COPY <<EOF slashfile3", `\$`, "EOF",
		`COPY <<"EOF" rawslashfile1`, `\`, "EOF", `COPY <<"EOF" rawslashfile2`, `\\`, "EOF", `COPY <<"EOF" rawslashfile3`, `\$`, "EOF")
	varDF := df("FROM scratch", "ARG name=world", "COPY <<EOF /dest/c1", "Hello ${name}!", "EOF",
		"COPY <<'EOF' /dest/c2", "Hello ${name}!", "EOF", `COPY <<"EOF" /dest/c3`, "Hello ${name}!", "EOF",
		"COPY <<EOF /dest/q1", "Hello '${name}'!", "EOF", "COPY <<EOF /dest/q2", `Hello "${name}"!`, "EOF",
		"COPY <<'EOF' /dest/qsingle1", "Hello '${name}'!", "EOF", `COPY <<"EOF" /dest/qdouble2`, `Hello "${name}"!`, "EOF")
	excludeDF := df("FROM scratch", "COPY --exclude=*/*.png --exclude=*/*.jpeg . /1", "COPY --exclude=*.mp3 dir3/ /3/",
		"COPY --exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/", "ADD --exclude=* dir* /6")
	excludeCtx := []bt.Entry{dir("dir1", 0o777), dir("dir2", 0o777), dir("dir3", 0o777), dir("dir4", 0o777),
		file("dir1/file-101.png", "2", 0o600), file("dir1/file-102.txt", "3", 0o600), file("dir1/file-103.jpeg", "4", 0o600),
		file("dir2/file-201.pdf", "6", 0o600), file("dir2/file-202.jpeg", "7", 0o600), file("dir2/file-203.png", "8", 0o600),
		file("dir3/file-301.mp3", "9", 0o600), file("dir3/file-302.mpeg", "10", 0o600), file("dir4/file-401.txt", "11", 0o600),
		link("dir4/file-402.txt", "file-401.txt"), link("dir4/file-403.txt", "file-404.txt")}
	relParents := []bt.Entry{dir("test", 0o755), dir("test/a", 0o755), dir("test/a/b", 0o755), dir("test/a/b/c", 0o755),
		dir("test/a/b/c/d", 0o755), dir("test/a/b/c/d/e", 0o755), dir("test/a/b2", 0o755), dir("test/a/b2/c", 0o755),
		dir("test/a/b2/c/d", 0o755), dir("test/a/b2/c/d/e", 0o755), dir("test/a/b/c2", 0o755), dir("test/a/b/c2/d", 0o755),
		dir("test/a/b/c2/d/e", 0o755), dir("test/a/b/c2/d/e2", 0o755), file("test/a/b/c/d/foo", "", 0o644),
		file("test/a/b/c/d/e/bay", "", 0o644), file("test/a/b2/c/d/e/bar", "", 0o644), file("test/a/b/c2/d/e/baz", "", 0o644),
		file("test/a/b/c2/d/e2/baz", "", 0o644)}
	return []copyCase{
		{
			name: "COPY heredocs with --chmod and --chown", from: "testCopyHeredoc",
			images:     map[string][]bt.Entry{"users": usersImage()},
			dockerfile: heredocDF,
			want: append(usersImage(), dir("dest", 0o755), dir("dest/double", 0o755), file("dest/double/EOF", "first file\n", 0o644),
				file("dest/double/EOF2", "second file\n", 0o644), file("dest/single", "single file\n", 0o644),
				dir("permfiles", 0o777), file("permfiles/all", "dummy content\n", 0o777),
				file("permfiles/owned", "dummy content\n", 0o644).Owned(1000, 1000), file("permfiles/rw", "dummy content\n", 0o644)),
			buildah: "buildah 1.28 has no heredocs",
		},
		{
			name: "heredoc escapes", from: "testCopyHeredocSpecialSymbols",
			dockerfile: symbolsDF,
			want: []bt.Entry{file("quotefile", "\"quotes in file\"\n", 0o644), file("rawslashfile1", "\\\n", 0o644),
				file("rawslashfile2", "\\\\\n", 0o644), file("rawslashfile3", "\\$\n", 0o644), file("slashfile1", "\n", 0o644),
				file("slashfile2", "\\\n", 0o644), file("slashfile3", "$\n", 0o644)},
			buildah: "buildah 1.28 has no heredocs",
		},
		{
			name: "heredoc expansion follows the delimiter's quoting", from: "testHeredocVarSubstitution",
			dockerfile: varDF,
			want: []bt.Entry{dir("dest", 0o755), file("dest/c1", "Hello world!\n", 0o644), file("dest/c2", "Hello ${name}!\n", 0o644),
				file("dest/c3", "Hello ${name}!\n", 0o644), file("dest/q1", "Hello 'world'!\n", 0o644), file("dest/q2", "Hello \"world\"!\n", 0o644),
				file("dest/qdouble2", "Hello \"${name}\"!\n", 0o644), file("dest/qsingle1", "Hello '${name}'!\n", 0o644)},
			buildah: "buildah 1.28 has no heredocs",
		},
		{
			name: "--parents keeps the source path", from: "testCopyParents",
			context: []bt.Entry{dir("foo1", 0o700), dir("foo1/foo2", 0o700), file("foo1/foo2/bar", "testing", 0o600),
				file("foo1/foo2/baz", "testing2", 0o600)},
			dockerfile: df("FROM scratch", "COPY --parents foo1/foo2/bar /", "WORKDIR /test", "COPY --parents foo1/foo2/ba* ."),
			want: []bt.Entry{dir("foo1", 0o700), dir("foo1/foo2", 0o700), file("foo1/foo2/bar", "testing", 0o600),
				dir("test", 0o755), dir("test/foo1", 0o700), dir("test/foo1/foo2", 0o700), file("test/foo1/foo2/bar", "testing", 0o600),
				file("test/foo1/foo2/baz", "testing2", 0o600)},
			buildah: "buildah 1.28 has no --parents",
		},
		{
			name: "--parents pivots and ** from a stage", from: "testCopyRelativeParents (middle, doublewildcard)",
			images:     map[string][]bt.Entry{"base": relParents},
			dockerfile: df("FROM base AS base", "FROM scratch", "COPY --from=base --parents /test/a/b/./c/d /middle/", "COPY --from=base --parents /test/a/b*/./c/**/e /dw/"),
			want: []bt.Entry{dir("dw", 0o755), dir("dw/c", 0o755), dir("dw/c/d", 0o755), dir("dw/c/d/e", 0o755), file("dw/c/d/e/bar", "", 0o644),
				file("dw/c/d/e/bay", "", 0o644), dir("middle", 0o755), dir("middle/c", 0o755), dir("middle/c/d", 0o755),
				dir("middle/c/d/e", 0o755), file("middle/c/d/e/bay", "", 0o644), file("middle/c/d/foo", "", 0o644)},
			buildah: "buildah 1.28 has no --parents",
		},
		{
			name: "--exclude patterns relative to each source", from: "testExcludedFilesOnCopy (builder1, 3, 4, 6)",
			context:    excludeCtx,
			dockerfile: excludeDF,
			want: []bt.Entry{dir("1", 0o755), file("1/Dockerfile", excludeDF, 0o600), dir("1/dir1", 0o777), file("1/dir1/file-102.txt", "3", 0o600),
				dir("1/dir2", 0o777), file("1/dir2/file-201.pdf", "6", 0o600), dir("1/dir3", 0o777), file("1/dir3/file-301.mp3", "9", 0o600),
				file("1/dir3/file-302.mpeg", "10", 0o600), dir("1/dir4", 0o777), file("1/dir4/file-401.txt", "11", 0o600),
				link("1/dir4/file-402.txt", "file-401.txt"), link("1/dir4/file-403.txt", "file-404.txt"),
				dir("3", 0o755), file("3/file-302.mpeg", "10", 0o600), dir("4", 0o755), file("4/file-302.mpeg", "10", 0o600), dir("6", 0o755)},
			buildah: "buildah 1.28 has no --exclude",
		},
		{
			name: "WORKDIR creates its directory", from: "testWorkdirCreatesDir",
			dockerfile: df("FROM scratch", "WORKDIR /foo", "WORKDIR /"),
			want:       []bt.Entry{dir("foo", 0o755)},
			buildah:    "same",
		},
		{
			name: "WORKDIR directory belongs to USER", from: "testWorkdirUser",
			images:     map[string][]bt.Entry{"users": usersImage()},
			dockerfile: df("FROM users", "USER user", "WORKDIR /mydir", "USER 1234:5678", "WORKDIR /numeric", "USER nosuchuser", "WORKDIR /unknown"),
			want: append(usersImage(), dir("mydir", 0o755).Owned(1000, 1000), dir("numeric", 0o755).Owned(1234, 5678),
				dir("unknown", 0o755)),
			buildah: "same",
		},
		{
			name: "COPY --from sources are absolute", from: "testWorkdirCopyIgnoreRelative",
			dockerfile: df("FROM scratch AS base", "WORKDIR /foo", "COPY Dockerfile /", "FROM scratch", "COPY --from=base Dockerfile ."),
			want:       []bt.Entry{file("Dockerfile", df("FROM scratch AS base", "WORKDIR /foo", "COPY Dockerfile /", "FROM scratch", "COPY --from=base Dockerfile ."), 0o600)},
			buildah:    "same",
		},
		{
			name: "destination symlinks resolve inside the image", from: "fs.RootPath semantics of fsutil copy (dest path followed in root)",
			images: map[string][]bt.Entry{"linked": {dir("srv", 0o755), dir("srv/app", 0o755), link("app", "/srv/app"),
				link("escape", "../../../../tmp"), link("dangling", "/made/by/copy")}},
			context:    []bt.Entry{file("a.txt", "a", 0o600)},
			dockerfile: df("FROM linked", "COPY a.txt /app/", "COPY a.txt /escape/", "COPY a.txt /dangling"),
			want: []bt.Entry{link("app", "/srv/app"), link("dangling", "/made/by/copy"), link("escape", "../../../../tmp"),
				dir("made", 0o755), dir("made/by", 0o755), file("made/by/copy", "a", 0o600),
				dir("srv", 0o755), dir("srv/app", 0o755), file("srv/app/a.txt", "a", 0o600), dir("tmp", 0o755), file("tmp/a.txt", "a", 0o600)},
			buildah: "same except the dangling link: buildah makes /made/by/copy a directory, BuildKit (fs.RootPath) writes the file there",
		},
		{
			name: "hardlinks kept, context owners reset", from: "fsutil copy getLinkSource; reference: COPY --chown (files are 0:0 without it)",
			context:    []bt.Entry{file("d/a", "x", 0o640).Owned(1234, 1234), bt.Hardlink("d/b", "d/a"), bt.Fifo("d/p", 0o600)},
			dockerfile: df("FROM scratch", "COPY d /d"),
			want:       []bt.Entry{dir("d", 0o755), file("d/a", "x", 0o640), bt.Hardlink("d/b", "d/a"), bt.Fifo("d/p", 0o600)},
			buildah:    "same",
		},
		{
			name: "missing source names the file and line", from: "reference: COPY (file not found)",
			dockerfile: df("FROM scratch", "ENV A=b", "COPY missing.txt /x"),
			wantErr:    `source "missing.txt": not in the build context`, wantLine: 3,
			buildah: "same (error)",
		},
		{
			name: "a .dockerignore excluding everything", from: "testDockerignore (all excluded), Docker: no source files were specified",
			context:    []bt.Entry{file("a", "", 0o600), file(".dockerignore", "*\n", 0o600)},
			dockerfile: df("FROM scratch", "COPY . /app"),
			wantErr:    "no source files were specified", wantLine: 2,
			buildah: "buildah 1.28 copies nothing and succeeds (so does BuildKit); Docker and minibuild refuse",
		},
		{
			name: "a source outside the context", from: "reference: COPY (sources outside the context)",
			context:    []bt.Entry{link("out", "../../etc")},
			dockerfile: df("FROM scratch", "COPY ../etc/passwd /", "COPY out/passwd /"),
			wantErr:    "outside the build context", wantLine: 2,
			buildah: "buildah and BuildKit clamp ../ to the context root (buildah then fails: no such file); minibuild refuses",
		},
		{
			name: "a directory onto a file", from: "reference: COPY (directory onto an existing file is an error)",
			images:     map[string][]bt.Entry{"withfile": {file("f", "", 0o644)}},
			context:    []bt.Entry{dir("d", 0o700), file("d/x", "", 0o600)},
			dockerfile: df("FROM withfile", "COPY d /f"),
			wantErr:    "cannot copy to non-directory: /f", wantLine: 2,
			buildah: "same (error)",
		},
		{
			name: "a file onto a directory", from: "fsutil copy ensureEmptyFileTarget",
			images:     map[string][]bt.Entry{"withdir": {dir("x", 0o755), dir("x/y", 0o755)}},
			context:    []bt.Entry{dir("src", 0o700), file("src/y", "", 0o600)},
			dockerfile: df("FROM withdir", "COPY src /x"),
			wantErr:    "cannot replace to directory /x/y with file", wantLine: 2,
			buildah: "buildah succeeds; BuildKit's fsutil refuses to replace a directory with a file",
		},
		{
			name: "an unknown --chown user", from: "reference: COPY --chown (names must exist in the image)",
			images:     map[string][]bt.Entry{"users": usersImage()},
			context:    []bt.Entry{file("a", "", 0o600)},
			dockerfile: df("FROM users", "COPY --chown=ghost a /a"),
			wantErr:    `user "ghost" in /etc/passwd of the image: not found`, wantLine: 2,
			buildah: "same (error)",
		},
	}
}
