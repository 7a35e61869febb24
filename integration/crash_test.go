package integration

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestImportCrashSafety kills `minibuild import` with SIGKILL at random
// points, over and over, on one store. After every kill fsck must find
// nothing wrong and the tag must be absent or right; at the end a plain
// import must succeed. MINIBUILD_STRESS=1 (make stress) runs it longer.
func TestImportCrashSafety(t *testing.T) {
	t.Parallel()
	runs := 24
	if os.Getenv("MINIBUILD_STRESS") == "1" {
		runs = 200
	}
	e := NewEnv(t)
	const name = "docker.io/library/big:1"
	var layers []layer
	for i := range 4 {
		layers = append(layers, randomLayer(t, uint64(i), 8<<20))
	}
	want := writeLayout(t, e.Path("layout"), image{RefName: name, Layers: layers})[0]
	tarDir(t, e.Path("layout"), e.Path("layout.tar"))
	inputs := []string{e.Path("layout"), e.Path("layout.tar")}

	// An uninterrupted import in another store sets the scale of the
	// random kill delays (not an assertion: only where the kills land).
	scratch := NewEnv(t)
	start := time.Now()
	scratch.MustRun("import", inputs[1])
	full := time.Since(start)

	rng := rand.New(rand.NewPCG(3, 7))
	killed := 0
	for i := range runs {
		delay := time.Duration(rng.Float64() * float64(full))
		if importKilled(t, e, inputs[i%2], delay) {
			killed++
		}
		e.Fsck()
		got, tagged := indexNames(t, filepath.Join(e.Root, "oci"))[name]
		if tagged && got != want {
			t.Fatalf("run %d: %s points at %s, want %s", i, name, got, want)
		}
		if tagged {
			// Completed: start the next run from an empty store again.
			e.MustRun("rmi", name)
		}
	}
	t.Logf("%d of %d imports killed (an uninterrupted one took %v)", killed, runs, full)
	e.MustRun("import", inputs[0])
	if got := indexNames(t, filepath.Join(e.Root, "oci"))[name]; got != want {
		t.Errorf("import after the crashes: %s = %q, want %s", name, got, want)
	}
	e.Fsck()
}

// importKilled runs `minibuild import input`, sends SIGKILL after delay and
// reports whether the kill ended it. An import that fails on its own fails
// the test.
func importKilled(t *testing.T, e *Env, input string, delay time.Duration) bool {
	t.Helper()
	cmd := e.Command(t.Context(), "import", input)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(delay, func() { cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("import %s (not killed): %v", input, err)
	}
	return false
}
