#!/usr/bin/env bash
# ensure-go.sh — print the path of a Go toolchain >= $GO_MIN (go.mod's version).
#
# Uses `go` from PATH or /usr/local/go when it is new enough. Otherwise it
# downloads the toolchain from the Go module proxy (the same place `go` itself
# fetches toolchains from, golang.org/toolchain) into ~/.cache/minibuild/ and
# prints that path. No other network access is needed.
set -euo pipefail
GO_MIN=${GO_MIN:-1.26}
GO_FETCH=${GO_FETCH:-1.26.8}
PROXY=${GOPROXY_URL:-https://proxy.golang.org}

ok() { # ok GOBIN: is this go >= GO_MIN?
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [[ $(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | head -n1) == "$GO_MIN" ]]
}

for g in "$(command -v go || true)" /usr/local/go/bin/go; do
  if [[ -n $g && -x $g ]] && ok "$g"; then echo "$g"; exit 0; fi
done

case $(uname -m) in
  x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) echo "ensure-go: unsupported arch $(uname -m)" >&2; exit 1 ;;
esac
dest=${XDG_CACHE_HOME:-$HOME/.cache}/minibuild/go$GO_FETCH
if [[ ! -x $dest/bin/go ]]; then
  command -v curl >/dev/null && command -v unzip >/dev/null || {
    echo "ensure-go: need curl and unzip (apt-get install curl unzip)" >&2; exit 1; }
  mod=golang.org/toolchain@v0.0.1-go$GO_FETCH.linux-$arch
  echo "ensure-go: fetching go$GO_FETCH from $PROXY" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL -o "$tmp/go.zip" "$PROXY/golang.org/toolchain/@v/v0.0.1-go$GO_FETCH.linux-$arch.zip"
  unzip -q "$tmp/go.zip" -d "$tmp/x"
  mkdir -p "$(dirname "$dest")"
  rm -rf "$dest"
  mv "$tmp/x/$mod" "$dest"
  chmod +x "$dest"/bin/* "$dest"/pkg/tool/*/* 2>/dev/null || true
fi
echo "$dest/bin/go"
