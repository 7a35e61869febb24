#!/usr/bin/env bash
# demo.sh — `make demo`: a first look at minibuild on a fresh Debian machine,
# as root. It installs busybox-static if it is missing (the only download),
# makes a busybox base image with minibuild itself, builds examples/hello,
# rebuilds it from the cache, shows `explain` after a touch and after an
# edit, the image's history, and runs it.
#
# The images go to the default store (/var/lib/minibuild, or $MINIBUILD_ROOT),
# so they are there to play with afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIBUILD=${MINIBUILD_BIN:-bin/minibuild}
export MINIBUILD # for busybox-base.sh

if [[ -t 1 ]]; then
  bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
else
  bold='' dim='' off=''
fi

# heading TITLE [EXPLANATION…]: what the next command shows.
heading() {
  printf '\n%s==> %s%s\n' "$bold" "$1" "$off"
  shift
  for line in "$@"; do
    printf '    %s%s%s\n' "$dim" "$line" "$off"
  done
}

# show CMD…: print a command, then run it.
show() {
  printf '%s$ %s%s\n' "$bold" "$*" "$off"
  "$@"
}

if [[ $(id -u) != 0 ]]; then
  echo "demo.sh: run as root: builds mount overlays and create namespaces" >&2
  exit 1
fi
if [[ ! -x $MINIBUILD ]]; then
  echo "demo.sh: $MINIBUILD is not built; run make demo (it builds first)" >&2
  exit 1
fi

# The base needs a static busybox: Debian's busybox package is dynamic.
static_busybox() {
  local bb
  bb=$(command -v busybox) || return 1
  ! ldd "$bb" >/dev/null 2>&1
}
if ! static_busybox; then
  heading "Installing busybox-static" \
    "The base image is made from it, offline: no registry is needed."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-cache show busybox-static >/dev/null 2>&1; then
    apt-get update -q
  fi
  apt-get install -y -q busybox-static
fi

heading "Making a base image, busybox, with minibuild itself" \
  "FROM scratch + COPY of a root filesystem: the static busybox binary, a" \
  "symlink per applet and a minimal /etc/passwd. Tagged \"busybox\"."
scripts/busybox-base.sh

heading "The Dockerfile of examples/hello"
cat examples/hello/Dockerfile

heading "Building it: minibuild -t hello examples/hello" \
  "Each step runs in an overlay-mounted scratch root; each filesystem step" \
  "becomes one reproducible layer."
show "$MINIBUILD" -t hello examples/hello

heading "Rebuilding: nothing changed, so every step comes from the cache" \
  "--explain prints, after the build, why each step was or was not cached."
show "$MINIBUILD" -t hello --explain examples/hello

heading "Touching a file: still cached" \
  "Cache keys hash what files contain, never their modification times."
touch examples/hello/greeting.txt
show "$MINIBUILD" explain examples/hello

heading "Editing greeting.txt: explain names the step that misses, and why" \
  "explain is a dry run: it builds nothing. The steps after a miss miss too:" \
  "their parent changed."
backup=$(mktemp)
cp -p examples/hello/greeting.txt "$backup"
trap 'cp -p "$backup" examples/hello/greeting.txt; rm -f "$backup"' EXIT
echo "(edited by the demo)" >>examples/hello/greeting.txt
show "$MINIBUILD" explain examples/hello
cp -p "$backup" examples/hello/greeting.txt

if "$MINIBUILD" history --help >/dev/null 2>&1; then
  heading "The image's history: what each instruction added"
  show "$MINIBUILD" history hello
fi

heading "Running the image: minibuild run hello" \
  "The same sandbox as RUN steps; the container is removed when it exits."
show "$MINIBUILD" run hello

heading "Next" \
  "minibuild --help                  every command" \
  "ls examples/                      more Dockerfiles, with expected results" \
  "minibuild images                  what the store holds (${MINIBUILD_ROOT:-/var/lib/minibuild})"
