// Package exec runs one build step's process in a sandbox: it mounts an
// overlay root from a plain [Spec], starts the process in new namespaces,
// owns its lifetime and reports its exit status. [WithRoot] mounts the
// same kind of root for in-process steps (COPY, ADD, WORKDIR).
//
// # What it owns, and what it does not
//
// exec owns: turning a Spec into mounts ([Spec.Mounts], data before any
// side effect), the namespaces, the sandbox's init, capabilities and
// credentials, killing every process of a step, and leaving no mount,
// process or mountpoint behind. It does not own: which layers form the
// root or what happens to the upper directory afterwards (the builder
// diffs it with package layer), the image config (the builder turns ENV,
// USER, WORKDIR, SHELL into a Spec), output formatting, or retries.
//
// # The sandbox
//
// [Run] re-executes the running binary (/proc/self/exe) with a hidden first
// argument, as PID 1 of new mount, PID, UTS and IPC namespaces. main must
// hand control to [Init] before anything else when [IsInit] reports true;
// so must the TestMain of any test binary that calls Run. A minibuild
// built with the embedinit tag starts instead a small program that is
// Init alone, from a sealed memfd (initprog_linux.go): the same code,
// without the cost of starting all of minibuild. The spec travels over a
// socket, never the environment, with the command's stdout and stderr.
// The init:
//
//  1. marks every descriptor but stdin, stdout and stderr close-on-exec,
//     whatever minibuild inherited, and waits for its spec;
//  2. unshares a network namespace for [NetworkNone];
//  3. makes every mount private, so nothing propagates to the host;
//  4. mounts a tmpfs over the work directory, in its namespace only, for
//     the root's mount point, the generated /etc/hosts and /etc/hostname
//     and a stub layer of empty mountpoints below the image's layers;
//  5. mounts the root and then each entry of [Spec.Mounts]; a mountpoint
//     that neither the image nor the stub layer provides is created in the
//     upper directory and removed after the run, so that none of /proc,
//     /dev, /sys, /etc/resolv.conf, /etc/hosts, /etc/hostname (or an /etc
//     made for them) reaches a layer;
//  6. brings up loopback (network none), sets the host name, pivot_roots
//     into the root and detaches the old one;
//  7. resolves USER in the image's /etc/passwd and /etc/group, creates
//     the working directory if missing (as BuildKit does), completes PATH
//     and HOME, limits capabilities to Docker's default set, sets groups,
//     gid and uid, and execs the command, which becomes PID 1 with stdin
//     /dev/null.
//
// A [Runner] starts the init of the next step while the current one runs:
// an init does not depend on its spec until it reads it, and starting one
// (a Go program) is most of the cost of a short step. The waiting init is
// killed by [Runner.Close], and dies with minibuild like any other.
//
// Setup and exec errors come back over a close-on-exec pipe, so "exec
// /bin/sh: no such file or directory" is reported as such, not as an exit
// status. When PID 1 exits, the kernel kills every other process of its
// PID namespace before the parent sees the exit, and the mount namespace,
// with every mount in it, goes away with its last process: a daemon a step
// forks, a cancelled step, even minibuild killed with SIGKILL (the init
// has a parent-death signal) leave no process or mount behind. (After a
// SIGKILL, the upper and work directories are left for the next start to
// remove.)
//
// What a step sees is modelled on `docker build`: the hostname is
// [DefaultHostname] unless set, and like `docker run` it is also in
// /etc/hostname and resolvable through /etc/hosts, both generated and
// mounted read-only (BuildKit leaves the image's /etc/hostname visible
// instead; minibuild prefers one consistent answer). /etc/resolv.conf is
// the host's, read-only. Writes to the three files fail rather than
// silently vanish.
//
// # Security stance
//
// The sandbox isolates a step's view: it cannot see or write the host's
// files, mounts or processes, and it cannot mount, unshare a mount
// namespace, load modules, reconfigure the kernel through /proc/sys or
// /sys, or open device nodes it creates (the root and /dev are nodev,
// since there is no device cgroup). It is as strong as Docker's default
// isolation minus what minibuild does not set up, and RUN as root is NOT a
// security boundary against the kernel:
//
//   - the process is real root (uid 0 of the host; no user namespace),
//     with Docker's default capabilities, including CAP_MKNOD, CAP_NET_RAW
//     and CAP_SETUID; no_new_privs is off, so setuid binaries work;
//   - there is no seccomp filter, AppArmor or SELinux profile, so the
//     whole system call surface of the kernel is reachable, and a kernel
//     bug is a host compromise;
//   - there are no cgroup limits: a step can use all CPU, memory and PIDs;
//   - the network is the host's by default: a step reaches whatever the
//     host reaches, including services bound to its loopback.
//
// Build only Dockerfiles and base images you would run as root on the
// machine.
package exec
