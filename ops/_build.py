"""Build, cache and load the fused CUDA ops (`ops/cuda/NAME.cpp` + `NAME.cu`).

`load_op(name)` compiles an op with ninja through torch.utils.cpp_extension the first time it is
needed, caches the result under a hash of everything that changes the binary, and returns the
imported module, or None after a single warning naming the cause and the fix. The build never
waits forever: each build runs in a fresh temp folder that is renamed into the cache when complete,
and the per-key lock records its owner's PID so a lock left by a dead process is cleared.
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import importlib.machinery
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Callable

import torch

from torch_utils.processes import pid_alive

from ._impl import requested_impl

OPS = ("bias_act", "upfirdn2d", "filtered_lrelu")
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda")
# Built when no GPU is visible (build nodes): Ampere, Ada, Hopper, plus PTX for newer GPUs.
DEFAULT_ARCHS = ("8.0", "8.6", "8.9", "9.0+PTX")
LOCK_TIMEOUT_S = 600.0
DONE_MARKER = "BUILD_OK"


class OpsBuildError(RuntimeError):
    """A fused op cannot be built; the message names the cause and the fix."""


class OpsBuildWarning(UserWarning):
    """Emitted once per cause when a CUDA op is unavailable and the PyTorch path is used."""


@dataclasses.dataclass
class BuildResult:
    name: str
    status: str  # "built", "cached" or "failed"
    reason: str = ""
    seconds: float = 0.0
    path: str = ""


# Per-process memory: name -> module (success) / failure reason, so failures are not retried.
_loaded: dict[str, object] = {}
_failed: dict[str, str] = {}
_warned: set[str] = set()
# Threads of one process (a UI serving requests) share these and the build: one at a time.
_lock = threading.RLock()


# ---------------------------------------------------------------- CUDA toolkit discovery
def _has_cudart(root: str) -> bool:
    libs = [os.path.join(root, d, "libcudart.so*") for d in ("lib64", "lib", os.path.join("lib", "x64"))]
    libs += [os.path.join(root, "targets", "*", "lib", "libcudart.so*")]
    return any(glob.glob(p) for p in libs)


def check_cuda_root(root: str) -> str | None:
    """None if `root` is a usable toolkit, else what is missing."""
    if not os.path.isdir(root):
        return f"{root} is not a folder"
    if not _has_cudart(root):
        return f"no libcudart in {root}/lib64 or {root}/lib"
    if not (os.path.isfile(os.path.join(root, "include", "cuda_runtime.h"))
            or glob.glob(os.path.join(root, "targets", "*", "include", "cuda_runtime.h"))):
        return f"no include/cuda_runtime.h in {root}"
    return None


def _wrapper_target(path: str) -> str | None:
    """If `path` is a small shell script that execs another nvcc, that nvcc's path."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None  # a real binary
    m = re.search(rb"""(?:exec\s+)?["']?(/[^\s"']*/bin/nvcc)\b""", head)
    return m.group(1).decode() if m else None


def _root_from_nvcc(nvcc: str, depth: int = 0) -> str | None:
    """Toolkit root behind an nvcc path, following symlinks and wrapper scripts."""
    real = os.path.realpath(nvcc)
    target = _wrapper_target(real)
    if target and depth < 5 and os.path.realpath(target) != real:
        return _root_from_nvcc(target, depth + 1)
    return os.path.dirname(os.path.dirname(real))


def find_cuda_root() -> tuple[str | None, list[str]]:
    """(toolkit root, notes on rejected candidates). Env wins, then nvcc on PATH, then defaults."""
    candidates: list[tuple[str, str]] = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            candidates.append((var, os.environ[var]))
    nvcc = shutil.which("nvcc")
    if nvcc:
        root = _root_from_nvcc(nvcc)
        if root:
            candidates.append((f"nvcc at {nvcc}", root))
    candidates.append(("/usr/local/cuda", "/usr/local/cuda"))
    candidates += [("/usr/local/cuda-*", p) for p in sorted(glob.glob("/usr/local/cuda-*"), reverse=True)]
    notes = []
    for source, root in candidates:
        root = os.path.realpath(root)
        problem = check_cuda_root(root)
        if problem is None and os.access(os.path.join(root, "bin", "nvcc"), os.X_OK):
            return root, notes
        notes.append(f"{source}: {problem or 'no bin/nvcc in ' + root}")
    return None, notes


def nvcc_version(root: str) -> str | None:
    """'13.0' from `nvcc --version`, or None if it cannot be run."""
    try:
        out = subprocess.run([os.path.join(root, "bin", "nvcc"), "--version"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\d+\.\d+)", out)
    return m.group(1) if m else None


# ---------------------------------------------------------------- architectures and cache key
def arch_list() -> list[str]:
    """Arches to build: TORCH_CUDA_ARCH_LIST if set, else the visible GPUs, else DEFAULT_ARCHS."""
    env = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if env:
        return [a for a in re.split(r"[;\s]+", env) if a]
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver must not stop the build of a default list
        count = 0
    if count:
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(count)})
        return [f"{a}.{b}" for a, b in caps[:-1]] + [f"{caps[-1][0]}.{caps[-1][1]}+PTX"]
    return list(DEFAULT_ARCHS)


def source_files(name: str, source_dir: str | None = None) -> list[str]:
    source_dir = source_dir or SOURCE_DIR
    return [os.path.join(source_dir, f"{name}{ext}") for ext in (".cpp", ".cu")]


def cache_dir() -> str:
    return os.environ.get("STYLEGAN_OPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stylegan", "ops")


def cache_key(sources: list[str], torch_version: str, cuda_version: str, archs: list[str]) -> str:
    """Hash of everything that changes the binary; headers next to the sources count too."""
    h = hashlib.sha256()
    for part in (torch_version, cuda_version, ";".join(archs)):
        h.update(part.encode() + b"\0")
    folders = sorted({os.path.dirname(s) for s in sources})
    headers = sorted(p for d in folders for p in glob.glob(os.path.join(d, "*.h")) + glob.glob(os.path.join(d, "*.cuh")))
    for path in list(sources) + headers:
        h.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- lock with owner PID
def _lock_owner(lock: str) -> int | None:
    try:
        with open(lock) as f:
            return int(f.read().strip() or "0") or None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def build_lock(lock: str, timeout: float = LOCK_TIMEOUT_S, poll: float = 0.5):
    """Exclusive lock file holding our PID. A lock whose owner is dead (or that has stayed empty for
    over 10 s: its writer died mid-write) is removed; a live owner is waited on up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            pid = _lock_owner(lock)
            try:
                age = time.time() - os.path.getmtime(lock)
            except OSError:
                continue  # removed meanwhile: retry at once
            if (pid is not None and not pid_alive(pid)) or (pid is None and age > 10):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(lock)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"lock {lock} still held by PID {pid} after {timeout:.0f} s; "
                                   f"if no build is running, delete it")
            time.sleep(poll)
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if _lock_owner(lock) == os.getpid():
                os.remove(lock)


# ---------------------------------------------------------------- building
@dataclasses.dataclass
class Toolchain:
    root: str | None = None
    nvcc_version: str | None = None
    archs: list[str] = dataclasses.field(default_factory=list)
    problem: str | None = None  # "cause. Fix: ..." when nothing can be built
    cache: str = dataclasses.field(default_factory=cache_dir)


def toolchain() -> Toolchain:
    """What a build would use, or why none is possible (checked cheaply, nothing compiled)."""
    tc = Toolchain(archs=arch_list())
    if torch.version.cuda is None:
        tc.problem = (f"torch {torch.__version__} is a CPU-only build. Fix: install a CUDA build of torch "
                      "(pip install torch --index-url https://download.pytorch.org/whl/cu130)")
        return tc
    tc.root, notes = find_cuda_root()
    if tc.root is None:
        tried = f" (tried: {'; '.join(notes)})" if notes else ""
        tc.problem = ("nvcc / CUDA toolkit not found" + tried +
                      ". Fix: install the CUDA toolkit or set CUDA_HOME to its root (the folder with bin/nvcc)")
        return tc
    tc.nvcc_version = nvcc_version(tc.root)
    if tc.nvcc_version is None:
        tc.problem = f"{tc.root}/bin/nvcc --version fails. Fix: repair the CUDA toolkit or set CUDA_HOME"
    else:
        tc.problem = missing_ninja()
    return tc


def missing_ninja() -> str | None:
    """Why torch's extension builder cannot run here (it drives ninja), or None."""
    return None if shutil.which("ninja") else "ninja not found. Fix: pip install ninja"


def _op_key(sources: list[str], tc: Toolchain) -> str:
    return cache_key(sources, torch.__version__, tc.nvcc_version, tc.archs)


def _build_folder(name: str, key: str) -> str:
    return os.path.join(cache_dir(), f"{name}-{key}")


def _module_name(name: str, key: str) -> str:
    return f"stylegan_{name}_{key}"


def _import_so(module_name: str, folder: str):
    """Import a built extension from `folder` (one whose DONE_MARKER exists)."""
    so = glob.glob(os.path.join(folder, module_name + "*.so")) + glob.glob(os.path.join(folder, module_name + "*.pyd"))
    if not so:
        raise ImportError(f"no {module_name} library in {folder}")
    loader = importlib.machinery.ExtensionFileLoader(module_name, so[0])
    spec = importlib.util.spec_from_file_location(module_name, so[0], loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[module_name] = module
    return module


@contextlib.contextmanager
def _build_env(tc: Toolchain):
    """Point torch at our toolkit root and arch list; torch reads CUDA_HOME once at import."""
    saved_env = {k: os.environ.get(k) for k in ("CUDA_HOME", "TORCH_CUDA_ARCH_LIST")}
    os.environ["CUDA_HOME"] = tc.root  # set before the import so torch's own guess is right too
    os.environ["TORCH_CUDA_ARCH_LIST"] = ";".join(tc.archs)
    # torch warns "No CUDA runtime is found" on a build node without a GPU; building needs none.
    ext_logger = logging.getLogger("torch.utils.cpp_extension")
    level = ext_logger.level
    ext_logger.setLevel(logging.ERROR)
    try:
        from torch.utils import cpp_extension
    finally:
        ext_logger.setLevel(level)
    saved_home = cpp_extension.CUDA_HOME
    cpp_extension.CUDA_HOME = tc.root
    try:
        yield cpp_extension
    finally:
        cpp_extension.CUDA_HOME = saved_home
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _compile(name: str, sources: list[str], module_name: str, tc: Toolchain | None, final: str,
             cflags: tuple[str, ...] = ("-O3",), ldflags: tuple[str, ...] = ()) -> None:
    """Compile into a fresh temp folder, then rename it to `final` (atomic: never half-written).
    `tc` None builds a C++-only extension (CPU kernels, the CPU emulation the tests use)."""
    # We hold this key's lock, so any temp folder for it is a leftover of a killed build.
    for stale in glob.glob(os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.tmp-*")):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-", dir=os.path.dirname(final))
    try:
        if tc is None:
            from torch.utils import cpp_extension
            env = contextlib.nullcontext(cpp_extension)
        else:
            env = _build_env(tc)
        with env as cpp_extension:
            cpp_extension.load(name=module_name, sources=sources, build_directory=tmp,
                               extra_cflags=list(cflags), extra_ldflags=list(ldflags),
                               extra_cuda_cflags=["-O3", "-lineinfo"],
                               with_cuda=tc is not None, verbose=False)
        open(os.path.join(tmp, DONE_MARKER), "w").close()
        if os.path.isdir(final):  # incomplete leftover of an interrupted build
            shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_module(name: str, key: str, sources: list[str], tc: Toolchain | None, cflags: tuple[str, ...] = ("-O3",),
                  ldflags: tuple[str, ...] = ()):
    """(module, folder, 'cached' | 'built'): under the key's lock, reuse the complete build in the
    key's cache folder or compile one into it, then import it; the module is what load_once(name)
    returns from then on."""
    final, module_name = _build_folder(name, key), _module_name(name, key)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    with build_lock(final + ".lock"):
        status = "cached"
        if not os.path.isfile(os.path.join(final, DONE_MARKER)):
            _compile(name, sources, module_name, tc, final, cflags, ldflags)
            status = "built"
        _loaded[name] = sys.modules.get(module_name) or _import_so(module_name, final)
        return _loaded[name], final, status


def _short_error(exc: BaseException) -> str:
    """The compiler's or linker's own diagnostics from a failed build, else its last line."""
    text = str(exc).strip() or type(exc).__name__
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    diagnostics = [l for l in lines if re.search(r"error:|cannot find -l|undefined reference|undefined symbol", l, re.I)]
    picked = diagnostics[:3] or [l for l in lines if re.search(r"error", l, re.I)][-1:] or lines[-1:]
    return " | ".join(l[:300] for l in picked)


def missing_sources(name: str, source_dir: str | None = None) -> str | None:
    """Why op `name` cannot be built from this installation, if its kernel sources are absent."""
    source_dir = source_dir or SOURCE_DIR
    names = [os.path.basename(p) for p in source_files(name, source_dir) + header_files(name, source_dir)
             if not os.path.isfile(p)]
    if not os.path.isdir(source_dir) or names:
        return incomplete_install(source_dir, ", ".join(names) if os.path.isdir(source_dir) else "the folder itself")
    return None


def incomplete_install(source_dir: str, what: str) -> str:
    return (f"kernel sources missing from {source_dir} ({what}): this installation of stylegan is "
            f"incomplete. Fix: reinstall stylegan")


def header_files(name: str, source_dir: str | None = None) -> list[str]:
    """The headers op `name` includes: its own and the shared one."""
    source_dir = source_dir or SOURCE_DIR
    return [os.path.join(source_dir, f"{name}.h"), os.path.join(source_dir, "common.h")]


def build_op(name: str, source_dir: str | None = None, tc: Toolchain | None = None) -> BuildResult:
    """Build (or find cached) one op; never raises for an expected failure."""
    # Missing sources first: no toolchain fixes an incomplete install, so that is what to say.
    problem = missing_sources(name, source_dir)
    if problem:
        return BuildResult(name, "failed", problem)
    tc = tc or toolchain()
    if tc.problem:
        return BuildResult(name, "failed", tc.problem)
    sources = source_files(name, source_dir)
    key = _op_key(sources, tc)
    start = time.perf_counter()
    try:
        _, final, status = cached_module(name, key, sources, tc)
    except Exception as exc:  # compiler, linker, import, lock: all reported, none fatal here
        return BuildResult(name, "failed", f"build failed: {_short_error(exc)}. Fix: run `stylegan ops build` "
                           f"for details, or set STYLEGAN_OPS_IMPL=fast", time.perf_counter() - start)
    return BuildResult(name, status, "", time.perf_counter() - start, final)


def load_once(key: str, build: Callable[[], BuildResult], what: str, warn: bool = True):
    """The module `build()` compiles and registers in `_loaded[key]`, built once per process, or None
    when it cannot be had (then, unless `warn` is off, one warning per cause: a missing toolkit
    fails every op for the same reason)."""
    module = _loaded.get(key)
    if module is not None:
        return module
    with _lock:
        if key in _loaded:  # built by another thread while this one waited
            return _loaded[key]
        if key not in _failed:
            result = build()
            if result.status != "failed":
                return _loaded[key]
            _failed[key] = result.reason
            if warn and result.reason not in _warned:
                _warned.add(result.reason)
                warnings.warn(f"stylegan: {what} unavailable, using the PyTorch path: {result.reason}",
                              OpsBuildWarning, stacklevel=4)
    return None


def load_op(name: str, device: torch.device | None = None, required: bool = False):
    """The compiled module for op `name`, or None (after one warning) if it cannot be built.
    With `required` (the caller forced 'cuda') a failure raises OpsBuildError instead."""
    module = load_once(name, lambda: build_op(name), f"CUDA op '{name}'", warn=not required)
    if module is None and required:
        raise OpsBuildError(f"CUDA op '{name}' was forced (STYLEGAN_OPS_IMPL=cuda) but cannot be built: "
                            f"{_failed[name]}")
    return module


def cached_build(name: str, tc: Toolchain, source_dir: str | None = None) -> str | None:
    """Folder of a complete cached build for the current toolchain, without building."""
    sources = source_files(name, source_dir)
    if tc.problem or not all(os.path.isfile(s) for s in sources):
        return None
    return complete_build(name, _op_key(sources, tc))


def complete_build(name: str, key: str) -> str | None:
    """The cache folder of `name` built under `key`, if that build completed."""
    final = _build_folder(name, key)
    return final if os.path.isfile(os.path.join(final, DONE_MARKER)) else None


# ---------------------------------------------------------------- public: what runs, and building ahead of time
def build(name: str, tc: Toolchain | None = None) -> BuildResult:
    """Compile op `name` now, or find it cached, for this machine's toolchain; never raises for an
    expected failure (the result says why)."""
    return build_op(name, tc=tc)


@dataclasses.dataclass
class OpStatus:
    name: str
    impl: str    # what runs on a CUDA tensor: 'cuda' | 'fast', or the forced implementation
    reason: str


def build_status(tc: Toolchain | None = None) -> list[OpStatus]:
    """Which implementation each fused op will use here, and why, without building anything.
    Raises ValueError when STYLEGAN_OPS_IMPL names no implementation."""
    tc = tc or toolchain()
    forced = requested_impl()
    gpu = torch.cuda.is_available()
    out = []
    for name in OPS:
        # An incomplete install is named before the toolchain: no toolkit can fix it.
        unbuildable = missing_sources(name) or tc.problem
        if forced:
            impl, why = forced, "forced by STYLEGAN_OPS_IMPL"
            if forced == "cuda" and unbuildable:
                why += f"; it will fail: {unbuildable}"
        elif not gpu:
            impl, why = "fast", "no CUDA device visible (CPU tensors use the fast path)"
            if missing_sources(name):
                why += f"; on a GPU too: {missing_sources(name)}"
        elif unbuildable:
            impl, why = "fast", f"CUDA kernels unavailable: {unbuildable}"
        elif cached_build(name, tc):
            impl, why = "cuda", f"built, cached in {cached_build(name, tc)}"
        else:
            impl, why = "cuda", "will be compiled on first use (or run `stylegan ops build`)"
        out.append(OpStatus(name, impl, why))
    return out


def reset() -> None:
    """Forget per-process results (tests)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
        _warned.clear()
