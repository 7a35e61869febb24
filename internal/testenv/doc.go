// Package testenv holds the helpers that tests in every minibuild package
// share. Only _test.go files import it; production code never does (the
// dependency test in cmd/minibuild enforces both).
//
// # Privileges and tools
//
// [RequirePrivileged] and [RequireTool] skip a test that cannot run here,
// and fail it instead under MINIBUILD_PRIVILEGED=1 (`make test`).
//
// # Registries
//
// [StartRegistry] runs Debian's docker-registry (distribution v2) for one
// test: on 127.0.0.1 and a free port, with its own storage, optionally TLS
// with a CA generated for the run and htpasswd (bcrypt) authentication. It
// needs the docker-registry binary, and htpasswd (apache2-utils) for Auth.
// The registry stops when the test ends, and its output reaches the test
// log only if the test failed. [StartFaultProxy] puts a reverse proxy in
// front of it that counts requests and blob bytes and injects faults
// (status codes, connection resets, corrupted bytes, drops, delays) by
// [Rule]. Both return an [Endpoint]: the address, CA and credentials as
// values for in-process clients and as files and environment variables
// for child processes and skopeo.
//
//	func TestPushThroughFlakyRegistry(t *testing.T) {
//		reg := testenv.StartRegistry(t, testenv.RegistryOptions{TLS: true, Auth: true})
//		px := testenv.StartFaultProxy(t, reg.Endpoint, testenv.ProxyOptions{})
//		px.Add(testenv.Rule{Method: "PUT", Kind: testenv.KindManifest, Times: 1, Fault: testenv.FailWith(503)})
//
//		cmd := exec.Command(bin, "build", "--push", "-t", px.Ref("app:v1"), dir)
//		cmd.Env = append(os.Environ(), px.Env()...) // DOCKER_CONFIG, SSL_CERT_FILE
//		if out, err := cmd.CombinedOutput(); err != nil {
//			t.Fatalf("build: %v\n%s", err, out)
//		}
//		if n := px.BlobBytes(); n > 1<<20 {
//			t.Errorf("downloaded %d bytes of blobs, want ≤ 1 MiB", n)
//		}
//		args := append([]string{"inspect", "--raw"}, reg.SkopeoArgs()...)
//		out, err := exec.Command("skopeo", append(args, "docker://"+reg.Ref("app:v1"))...).Output()
//		// …
//
//		reg.Stop() // the registry is down from here on; reg.Restart() brings it back
//	}
//
// In-process clients pass the endpoint's trust and credentials to
// go-containerregistry directly:
//
//	remote.Image(ref, remote.WithTransport(reg.Transport()),
//		remote.WithAuth(&authn.Basic{Username: reg.User, Password: reg.Password}))
//
// go-containerregistry tries HTTPS and then plain HTTP for registries on
// 127.0.0.1 and localhost, so a plain-HTTP registry needs no insecure
// option; when a TLS registry's CA is not trusted, its error names both
// attempts, the certificate failure and the plain-HTTP one.
package testenv
