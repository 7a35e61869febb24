package layer_test

import "math/rand/v2"

// randomBytes returns n pseudo-random (incompressible) bytes, the same for
// the same seed.
func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
