#!/usr/bin/env bash
# busybox-base.sh — make the "busybox" base image with minibuild itself,
# offline, from the host's busybox-static: a temporary context holding a
# root filesystem (bin/busybox, a symlink per applet from `busybox
# --list-full`, a minimal etc/passwd and etc/group) and a Dockerfile
#
#     FROM scratch
#     COPY rootfs/ /
#     ENV PATH=…
#     CMD ["sh"]
#
# built and tagged "busybox" (docker.io/library/busybox:latest). The demo and
# the integration tests make their base this way, so examples/ can say
# `FROM busybox` without a registry.
#
# usage: scripts/busybox-base.sh [minibuild global flags, e.g. --root DIR] [build flags]
#   MINIBUILD  the minibuild binary (default: $MINIBUILD_BIN, else bin/minibuild)
#   BUSYBOX    the static busybox binary (default: busybox from PATH)
set -euo pipefail

MINIBUILD=${MINIBUILD:-${MINIBUILD_BIN:-bin/minibuild}}
BUSYBOX=${BUSYBOX:-$(command -v busybox || true)}
if [[ -z $BUSYBOX ]]; then
  echo "busybox-base.sh: busybox not found (apt-get install busybox-static)" >&2
  exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
umask 022
root=$ctx/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var,tmp}
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One process for all the links (perl-base is essential in Debian): a
# shell loop forking mkdir and ln per applet takes seconds.
"$BUSYBOX" --list-full | perl -e '
  my $root = shift;
  while (my $applet = <STDIN>) {
    chomp $applet;
    next if $applet eq "" || $applet eq "bin/busybox";
    my $dir = $root;
    my @parts = split m{/}, $applet;
    pop @parts;
    for my $p (@parts) { $dir .= "/$p"; mkdir $dir, 0755 unless -d $dir; }
    unlink "$root/$applet";
    symlink("/bin/busybox", "$root/$applet") or die "symlink $applet: $!\n";
  }' "$root"

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
www-data:x:33:
users:x:100:
nogroup:x:65534:
EOF

cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["sh"]
EOF

"$MINIBUILD" "$@" -t busybox "$ctx"
