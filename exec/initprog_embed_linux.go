//go:build linux && embedinit

package exec

import _ "embed"

// initBinary is the init built by `go generate ./exec` (see
// initbin/README.md).
//
//go:embed initbin/minibuild-init
var initBinary []byte

func embeddedInit() []byte { return initBinary }
