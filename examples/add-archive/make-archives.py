#!/usr/bin/env python3
"""Regenerates the archives of this example (run in this directory).

The archives are committed; this script documents what they hold. Entries
have fixed times and numeric owners, so the output is the same each time
(the .zst file needs the zstd command).
"""
import bz2, gzip, io, lzma, subprocess, tarfile

MTIME = 1700000000


def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, mode, owner, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.mode, ti.uid, ti.gid = MTIME, mode, owner, owner
            ti.uname = ti.gname = ""
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, data
                tf.addfile(ti)
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, data
                tf.addfile(ti)
            else:
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


app = tar([
    ("app", "dir", 0o755, 1000, None),
    ("app/bin", "dir", 0o755, 1000, None),
    ("app/bin/run", "file", 0o755, 1000, b"#!/bin/sh\necho app\n"),
    ("app/README", "file", 0o644, 0, b"An application unpacked by ADD.\n"),
    ("app/current", "symlink", 0o777, 0, "bin/run"),
    ("app/README.link", "hardlink", 0o644, 0, "app/README"),
])
with open("app.tar.gz", "wb") as f:
    f.write(gzip.compress(app, mtime=0))
with open("data.tar.bz2", "wb") as f:
    f.write(bz2.compress(tar([("data/values.csv", "file", 0o644, 0, b"a,1\nb,2\n")])))
with open("logs.tar.xz", "wb") as f:
    f.write(lzma.compress(tar([("logs/today.log", "file", 0o640, 0, b"started\n")])))
plain = tar([("plain.txt", "file", 0o600, 0, b"from an uncompressed tar\n")])
with open("plain.tar", "wb") as f:
    f.write(plain)
conf = tar([("conf/app.conf", "file", 0o644, 0, b"level=debug\n")])
subprocess.run(["zstd", "-q", "-f", "--no-check", "-o", "conf.tar.zst"], input=conf, check=True)
# Named like an archive but not one: ADD copies it as it is.
with open("fake.tar.gz", "wb") as f:
    f.write(b"not really gzip\n")
