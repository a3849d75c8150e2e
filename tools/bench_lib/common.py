"""Shared helpers of tools/bench and tools/e2e_bench (python3 stdlib only).

Defines: ROOT (the workspace), nested_workspaces() (the example workspaces
.bazelignore keeps out of ROOT's //..., such as plugins/out_of_tree),
run_setup() (tools/setup: installs the Debian packages), bazel_query(),
bazel_build() and bazel_bin() (opt builds; binaries are found under
`bazel info -c opt bazel-bin`, never through the bazel-bin symlink,
which follows whatever configuration was built last; each takes the
workspace directory to run in, ROOT by default), machine_info() (what a
result file records about the machine and the source tree), and table() (a
plain-text table).
"""
import datetime
import os
import platform
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The Bazel options every benchmark is built with: -c opt (-O2, NDEBUG), as
# the benchmark targets' own comments say (`bazel run -c opt ...`). Plain
# `-c opt` rather than `--config=opt` (which adds a second -O2 to every
# command line): the two would not share cached actions and would rebuild
# each other's outputs in bazel-out/k8-opt.
BAZEL_OPTS = ["-c", "opt"]


def log(msg):
    """Prints a progress line on stderr (stdout carries the results)."""
    print(msg, file=sys.stderr, flush=True)


def run_setup(skip=False):
    """Runs tools/setup (installs missing Debian packages; a no-op when all are
    there). Exits with its status if it fails."""
    if skip:
        return
    setup = os.path.join(ROOT, "tools", "setup")
    rc = subprocess.call([setup])
    if rc != 0:
        sys.exit(f"tools/setup failed (exit {rc}); install the packages it lists, or pass --no-setup")


def nested_workspaces():
    """The directories .bazelignore lists that hold a WORKSPACE file: example
    workspaces (a studio's repository using this one as @game_gateway),
    built and tested on their own. Absolute paths, in file order."""
    out = []
    for line in _read(os.path.join(ROOT, ".bazelignore")).splitlines():
        line = line.strip()
        if line and not line.startswith("#") and \
                os.path.exists(os.path.join(ROOT, line, "WORKSPACE")):
            out.append(os.path.join(ROOT, line))
    return out


def bazel_build(targets, extra=None, keep_going=False, ws=ROOT):
    """Builds `targets` (labels) with the opt config in workspace `ws`. Exits
    on failure, or with keep_going returns the labels that failed to build
    (each retried alone, so one broken target does not hide the others)."""
    cmd = ["bazel", "build"] + BAZEL_OPTS + list(extra or [])
    log("$ " + ("" if ws == ROOT else f"(cd {os.path.relpath(ws, ROOT)}) ")
        + " ".join(cmd + list(targets)))
    rc = subprocess.call(cmd + (["--keep_going"] if keep_going else []) + list(targets), cwd=ws)
    if rc == 0:
        return []
    if not keep_going:
        sys.exit(f"bazel build failed (exit {rc})")
    failed = []
    for t in targets:
        if subprocess.call(cmd + [t], cwd=ws, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) != 0:
            failed.append(t)
    return failed


def bazel_query(expr, ws=ROOT):
    """Returns the labels `bazel query expr` prints in workspace `ws`. A
    package that does not load (someone is editing it) is skipped with a
    warning (--keep_going)."""
    out = subprocess.run(["bazel", "query", "--keep_going", expr], cwd=ws,
                         capture_output=True, text=True)
    if out.returncode not in (0, 3):  # 3: partial result
        sys.exit(f"bazel query {expr!r} failed:\n{out.stderr}")
    if out.returncode == 3:
        log("warning: bazel query skipped packages that do not load:\n" + out.stderr.strip())
    return [l.strip() for l in out.stdout.splitlines() if l.strip().startswith("//")]


_BIN_DIRS = {}


def bazel_bin(ws=ROOT):
    """The opt configuration's output directory (bazel-out/k8-opt/bin) of
    workspace `ws`."""
    if ws not in _BIN_DIRS:
        out = subprocess.run(["bazel", "info"] + BAZEL_OPTS + ["bazel-bin"], cwd=ws,
                             capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit("bazel info bazel-bin failed:\n" + out.stderr)
        _BIN_DIRS[ws] = out.stdout.strip()
    return _BIN_DIRS[ws]


def binary(label, ws=ROOT):
    """The path of an opt-built cc_binary of workspace `ws`:
    //tools/loadgen:loadgen -> <bazel-bin>/tools/loadgen/loadgen."""
    pkg, _, name = label.lstrip("/").partition(":")
    if not name:
        name = pkg.rsplit("/", 1)[-1]
    return os.path.join(bazel_bin(ws), pkg, name)


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine_info():
    """What a result file records: date, host, CPU, cores, memory, kernel,
    load, fd limits, and the source tree's git commit (+dirty)."""
    cpu = "unknown"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    commit = ""
    dirty = False
    if shutil.which("git"):
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                           capture_output=True, text=True)
        commit = r.stdout.strip()
        r = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                           text=True)
        dirty = bool(r.stdout.strip())
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg": _read("/proc/loadavg").split()[:3],
        "nofile_soft": soft,
        "nofile_hard": hard,
        "git_commit": commit + ("+dirty" if dirty else ""),
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
    }


def table(headers, rows, align=None):
    """Returns rows (lists of str) as an aligned text table. `align` is a
    string of 'l'/'r' per column (default: first left, the rest right)."""
    cols = len(headers)
    align = align or ("l" + "r" * (cols - 1))
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def fmt(r):
        cells = []
        for i, c in enumerate(r):
            cells.append(c.ljust(widths[i]) if align[i] == "l" else c.rjust(widths[i]))
        return "  ".join(cells).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)
