package oci

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"minibuild/internal/testenv"
	"minibuild/oci/ocitest"
)

func TestPushPullRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	img := ocitest.Image(t, map[string]string{"bin/sh": "#!"}, map[string]string{"app/main": "hello"})
	ref := px.Ref("team/app:v1")

	a := remoteStore(t, &px.Endpoint)
	want := importAs(t, a, ref, img)
	var ev events
	d, err := a.Push(ctx, ref, "", PushOptions{Progress: ev.add})
	if err != nil {
		t.Fatalf("Push(%s) = %v", ref, err)
	}
	if d.Digest != want {
		t.Errorf("Push() digest = %s, want %s", d.Digest, want)
	}
	if n := ev.count(BlobDone); n != 3 {
		t.Errorf("first push: %d blobs uploaded, want 3 (config, 2 layers): %v", n, ev.final())
	}

	// A fresh store pulls the same manifest, byte for byte.
	b := remoteStore(t, &px.Endpoint)
	got, err := b.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatalf("Pull(%s) = %v", ref, err)
	}
	if got.Digest != want {
		t.Errorf("Pull() digest = %s, want %s", got.Digest, want)
	}
	if r, err := b.Resolve(ref); err != nil || r.Digest != want {
		t.Errorf("Resolve(%s) after pull = %v, %v; want %s", ref, r.Digest, err, want)
	}
	fsckClean(t, a)
	fsckClean(t, b)

	// Other tools read what was pushed.
	skopeo := testenv.RequireTool(t, "skopeo")
	args := append([]string{"inspect"}, reg.SkopeoArgs()...)
	out, err := exec.Command(skopeo, append(args, "docker://"+reg.Ref("team/app:v1"))...).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var insp struct{ Digest string }
	if err := json.Unmarshal(out, &insp); err != nil || insp.Digest != want.String() {
		t.Errorf("skopeo inspect digest = %q (%v), want %s", insp.Digest, err, want)
	}

	// A second push sends nothing: every blob exists.
	px.ResetStats()
	ev = events{}
	if _, err := a.Push(ctx, ref, "", PushOptions{Progress: ev.add}); err != nil {
		t.Fatalf("second Push() = %v", err)
	}
	if n := uploads(px); n != 0 {
		t.Errorf("second push made %d upload requests, want 0", n)
	}
	if n := ev.count(BlobExists); n != 3 {
		t.Errorf("second push: %d blobs exist, want 3: %v", n, ev.final())
	}

	// Another repository of the same registry mounts instead of uploading.
	px.ResetStats()
	ev = events{}
	other := px.Ref("other/app:v2")
	if _, err := a.Push(ctx, ref, other, PushOptions{Progress: ev.add}); err != nil {
		t.Fatalf("Push(%s) = %v", other, err)
	}
	if n := uploads(px); n != 0 {
		t.Errorf("push to another repository made %d upload requests, want 0 (mounts)", n)
	}
	if n := ev.count(BlobMounted); n != 3 {
		t.Errorf("push to another repository: %d blobs mounted, want 3: %v", n, ev.final())
	}
	if n := px.BlobBytes(); n != 0 {
		t.Errorf("pushes downloaded %d blob bytes, want 0", n)
	}
}

func TestPushOnlyMissingBlobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := startRegistry(t)
	px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
	base := map[string]string{"bin/sh": "#!"}
	img1 := ocitest.Image(t, base)
	img2 := ocitest.Image(t, base, map[string]string{"app": "v2"})
	s := remoteStore(t, &px.Endpoint)
	importAs(t, s, px.Ref("app:1"), img1)
	importAs(t, s, px.Ref("app:2"), img2)
	if _, err := s.Push(ctx, px.Ref("app:1"), "", PushOptions{}); err != nil {
		t.Fatal(err)
	}
	px.ResetStats()
	var ev events
	if _, err := s.Push(ctx, px.Ref("app:2"), "", PushOptions{Progress: ev.add}); err != nil {
		t.Fatal(err)
	}
	// The shared base layer exists; the new layer and config go up.
	if got := ev.final(); got[imageLayers(t, img1)[0].Digest] != BlobExists {
		t.Errorf("base layer: %s, want exists", got[imageLayers(t, img1)[0].Digest])
	}
	if n := ev.count(BlobDone); n != 2 {
		t.Errorf("%d blobs uploaded, want 2 (config, new layer): %v", n, ev.final())
	}
	if n := px.Count("PUT", testenv.KindUpload); n != 2 {
		t.Errorf("%d upload commits, want 2", n)
	}
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	d := putTestImage(t, s, map[string]string{"a": "b"})
	if _, err := s.Push(ctx, d.Digest.String(), "", PushOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Push(digest, no destination) = %v, want ErrInvalid", err)
	}
	if _, err := s.Push(ctx, "nothere:1", "localhost:1/x:1", PushOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Push(missing image) = %v, want ErrNotFound", err)
	}
	if _, err := s.Push(ctx, d.Digest.String(), "localhost:1/x@"+d.Digest.String(), PushOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Push(to a digest) = %v, want ErrInvalid", err)
	}
}
