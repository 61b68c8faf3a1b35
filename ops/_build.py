"""Build, cache, load and verify the fused CUDA ops (`ops/cuda/NAME.cpp` + `NAME.cu`).

`load_op(name, device)` compiles an op with ninja through torch.utils.cpp_extension the first time
it is needed, caches the result, runs it once against the reference on the device (`_selfcheck`)
and returns the imported module, or None after a single warning naming the cause and the fix.

The cache is never wrong: a build's key hashes everything that changes the binary or its loading
(sources and headers, torch and its C++ ABI, the Python ABI, the host compiler, the CUDA toolkit's
path and version, the compile flags), and its folder records the GPU architectures it holds, so a
build made ahead on a node without a GPU is found on any GPU it covers. Each builder compiles into
its own temp folder and publishes it by an atomic rename; a lock (with host and heartbeat, safe on a
home folder shared across nodes) only saves duplicate work, and no builder deletes another's folder.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import glob
import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from typing import Callable, Mapping

import torch

from torch_utils import file_lock
from torch_utils.processes import owner_gone, owner_record

from . import _selfcheck
from ._impl import requested_impl

OPS = ("bias_act", "upfirdn2d", "filtered_lrelu")
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cuda")
# Built when no GPU is visible (build nodes): Ampere, Ada, Hopper, plus PTX for newer GPUs.
DEFAULT_ARCHS = ("8.0", "8.6", "8.9", "9.0+PTX")
CXX_FLAGS = ("-O3",)
CUDA_FLAGS = ("-O3", "-lineinfo")
LOCK_TIMEOUT_S = 600.0
DONE_MARKER = "BUILD_OK"  # written last into a build folder: what the build holds (JSON)
OWNER_FILE = "OWNER"      # in a temp build folder: who is building there
LEFTOVER_AGE_S = 7 * 86400  # a temp folder whose owner cannot be judged is removed after a week


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
    check: _selfcheck.Verdict | None = None  # the first-use check on this machine's GPU, when one ran


# Per-process memory: name -> module (success) / failure reason, so failures are not retried; where
# each module was loaded from; the check's verdict per (op, device kind).
_loaded: dict[str, object] = {}
_failed: dict[str, str] = {}
_folders: dict[str, str] = {}
_verdicts: dict[tuple[str, str], _selfcheck.Verdict] = {}
_warned: set[str] = set()
# Threads of one process (a UI serving requests) share these and the build: one at a time.
_lock = threading.RLock()


def _warn_once(message: str, cause: str | None = None, stacklevel: int = 3) -> None:
    """One warning per cause (default: the message) and process."""
    cause = cause or message
    if cause not in _warned:
        _warned.add(cause)
        warnings.warn(message, OpsBuildWarning, stacklevel=stacklevel + 1)


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


# ---------------------------------------------------------------- architectures
_ARCH = re.compile(r"^(\d+)\.(\d+)([af]?)(\+PTX)?$")


def visible_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the visible GPUs, [] without one (or with a broken driver)."""
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return sorted({torch.cuda.get_device_capability(i) for i in range(count)})
    except Exception:  # a broken driver must not stop a build for the default list
        return []


def covers(archs: list[str], cap: tuple[int, int], sass_only: bool = False) -> bool:
    """Whether a build for `archs` runs on a GPU of capability `cap`: machine code for the same major
    version and a minor no higher (an 'a' variant: that exact GPU only), or PTX for an architecture no
    newer, which the driver compiles at load (unless `sass_only`)."""
    for entry in archs:
        m = _ARCH.match(entry.strip())
        if not m:
            continue
        major, minor, variant, ptx = int(m[1]), int(m[2]), m[3], bool(m[4])
        exact = (major, minor) == cap
        if exact or (major == cap[0] and minor <= cap[1] and variant != "a"):
            return True
        if ptx and not sass_only and variant != "a" and (major, minor) <= cap:
            return True
    return False


def arch_list() -> list[str]:
    """Arches to build: TORCH_CUDA_ARCH_LIST if set (plus, after one warning, any visible GPU it does
    not cover: Docker images often set an older list), else the visible GPUs, else DEFAULT_ARCHS."""
    caps = visible_capabilities()
    env = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if env:
        archs = [a for a in re.split(r"[;\s]+", env) if a]
        missing = [f"{a}.{b}" for a, b in caps if not covers(archs, (a, b))]
        if missing:
            _warn_once(f"stylegan: TORCH_CUDA_ARCH_LIST={env!r} does not cover the visible GPU(s) "
                       f"(compute capability {', '.join(missing)}): building for {';'.join(archs + missing)} "
                       f"instead, or the kernels could not run here")
        return archs + missing
    if caps:
        return [f"{a}.{b}" for a, b in caps[:-1]] + [f"{caps[-1][0]}.{caps[-1][1]}+PTX"]
    return list(DEFAULT_ARCHS)


# ---------------------------------------------------------------- what a build is: identity, key, folder
def source_files(name: str, source_dir: str | None = None) -> list[str]:
    source_dir = source_dir or SOURCE_DIR
    return [os.path.join(source_dir, f"{name}{ext}") for ext in (".cpp", ".cu")]


def cache_dir() -> str:
    return os.environ.get("STYLEGAN_OPS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stylegan", "ops")


def python_abi() -> str:
    """The extension-module suffix of this interpreter ('.cpython-311-x86_64-linux-gnu.so'): two
    Pythons sharing a cache with the same torch need two builds."""
    return sysconfig.get_config_var("EXT_SUFFIX") or f".{sys.implementation.cache_tag}.so"


@functools.lru_cache(maxsize=None)
def _compiler_identity(cxx: str) -> str:
    path = shutil.which(cxx)
    if path is None:
        return f"{cxx} (not found)"
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return f"{os.path.realpath(path)} {out.strip().splitlines()[0] if out.strip() else '?'}"


def host_compiler() -> str:
    """The C++ compiler torch's extension builder runs (CXX, else c++): resolved path and version."""
    return _compiler_identity(os.environ.get("CXX", "c++"))


def build_identity(tc: Toolchain | None, cflags: tuple[str, ...] = CXX_FLAGS, ldflags: tuple[str, ...] = (),
                   **extra: str) -> dict[str, str]:
    """Everything besides the sources that changes the binary or whether it loads; `tc` None for a
    C++-only build. GPU architectures are not here: a folder records those (see find_build)."""
    identity = {"python": python_abi(), "torch": torch.__version__, "torch_cuda": str(torch.version.cuda),
                "cxx11_abi": str(torch.compiled_with_cxx11_abi()), "cxx": host_compiler(),
                "cc": os.environ.get("CC", ""), "cflags": " ".join(cflags), "ldflags": " ".join(ldflags)}
    if tc is not None:
        identity.update(cuda_root=str(tc.root), nvcc=str(tc.nvcc_version), cuda_flags=" ".join(CUDA_FLAGS))
    identity.update(extra)
    return identity


def cache_key(sources: list[str], identity: Mapping[str, str]) -> str:
    """Hash of the sources, the headers beside them and the build identity."""
    h = hashlib.sha256()
    for k in sorted(identity):
        h.update(f"{k}={identity[k]}".encode() + b"\0")
    folders = sorted({os.path.dirname(s) for s in sources})
    headers = sorted(p for d in folders for p in glob.glob(os.path.join(d, "*.h")) + glob.glob(os.path.join(d, "*.cuh")))
    for path in list(sources) + headers:
        h.update(os.path.basename(path).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def _arch_tag(archs: list[str]) -> str:
    """'8.0;8.6;9.0+PTX' -> 'sm80_86_90ptx', readable in a folder name."""
    return "sm" + "_".join(a.replace(".", "").replace("+PTX", "ptx").lower() for a in archs)


def _build_folder(name: str, key: str, archs: list[str] | None = None) -> str:
    return os.path.join(cache_dir(), f"{name}-{key}" + (f"-{_arch_tag(archs)}" if archs else ""))


def _module_name(name: str, key: str) -> str:
    return f"stylegan_{name}_{key}"


def _marker(folder: str) -> dict | None:
    """The completed build's record in `folder`, or None if the build there is absent or unfinished."""
    try:
        with open(os.path.join(folder, DONE_MARKER)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def complete_build(name: str, key: str, archs: list[str] | None = None) -> str | None:
    """The cache folder of `name` built under `key` (for exactly `archs`), if that build completed."""
    final = _build_folder(name, key, archs)
    return final if _marker(final) is not None else None


def find_build(name: str, key: str, archs: list[str] | None) -> str | None:
    """A completed build usable here: the one for exactly `archs`, else (with GPUs visible) one whose
    architectures cover every visible GPU, machine code preferred over PTX. A build made ahead on a
    node without a GPU, for the default list, is found this way on the GPU nodes."""
    exact = complete_build(name, key, archs)
    caps = visible_capabilities()
    if exact or not archs or not caps:
        return exact
    best, best_score = None, -1
    for folder in sorted(glob.glob(_build_folder(name, key) + "-sm*")):
        built = (_marker(folder) or {}).get("archs")
        if isinstance(built, list) and all(covers(built, c) for c in caps):
            score = sum(covers(built, c, sass_only=True) for c in caps)
            if score > best_score:
                best, best_score = folder, score
    return best


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


# ---------------------------------------------------------------- building and loading
def _import_so(module_name: str, folder: str):
    """Import the extension a completed build left in `folder`."""
    so = os.path.join(folder, module_name + python_abi())
    if not os.path.isfile(so):
        raise ImportError(f"no {os.path.basename(so)} in {folder}")
    loader = importlib.machinery.ExtensionFileLoader(module_name, so)
    spec = importlib.util.spec_from_file_location(module_name, so, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[module_name] = module
    return module


def _run_compiler(module_name: str, sources: list[str], folder: str, tc: Toolchain | None,
                  cflags: tuple[str, ...], ldflags: tuple[str, ...]) -> None:
    """torch's extension builder into `folder`, leaving `module_name`.so there."""
    env = contextlib.nullcontext(None) if tc is None else _build_env(tc)
    with env as cpp_extension:
        if cpp_extension is None:
            from torch.utils import cpp_extension
        cpp_extension.load(name=module_name, sources=sources, build_directory=folder, extra_cflags=list(cflags),
                           extra_ldflags=list(ldflags), extra_cuda_cflags=list(CUDA_FLAGS),
                           with_cuda=tc is not None, verbose=False)


def _clear_leftovers(final: str) -> None:
    """Temp folders of builds whose builder is provably gone (same host and PID namespace, PID
    dead), or that nobody touched for a week. A live builder's folder, on this node or another,
    is never touched."""
    for tmp in glob.glob(os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.tmp-*")):
        try:
            with open(os.path.join(tmp, OWNER_FILE)) as f:
                owner = json.load(f)
        except (OSError, ValueError):
            owner = None
        try:
            old = time.time() - os.path.getmtime(tmp) > LEFTOVER_AGE_S
        except OSError:
            continue
        if owner_gone(owner) or old:
            shutil.rmtree(tmp, ignore_errors=True)


def _compile(name: str, sources: list[str], module_name: str, tc: Toolchain | None, final: str, identity: dict,
             cflags: tuple[str, ...] = CXX_FLAGS, ldflags: tuple[str, ...] = ()) -> str:
    """Compile into a temp folder of our own, then publish it as `final` by an atomic rename. If
    another builder published first, theirs is used and ours discarded: 'built' or 'cached'."""
    _clear_leftovers(final)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-", dir=os.path.dirname(final))
    try:
        with open(os.path.join(tmp, OWNER_FILE), "w") as f:
            json.dump(owner_record(), f)
        _run_compiler(module_name, sources, tmp, tc, cflags, ldflags)
        # torch names it NAME.so whatever the interpreter; tag it as setuptools would.
        os.replace(os.path.join(tmp, module_name + ".so"), os.path.join(tmp, module_name + python_abi()))
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide the build from the other users of a shared cache
        with open(os.path.join(tmp, DONE_MARKER), "w") as f:
            json.dump({"archs": None if tc is None else tc.archs, "identity": identity}, f, indent=1)
        for attempt in range(2):
            try:
                os.rename(tmp, final)
                return "built"
            except OSError:
                if _marker(final) is not None:
                    return "cached"  # another builder's complete build: use it
                if attempt == 0 and os.path.isdir(final):
                    # An unfinished folder at the final name: not a live build (those live in temp
                    # folders), left by an old version or by hand. Move it aside, then publish.
                    aside = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.tmp-", dir=os.path.dirname(final))
                    os.rename(final, os.path.join(aside, "old"))
                    shutil.rmtree(aside, ignore_errors=True)
                    continue
                raise
        raise OSError(f"could not publish {final}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cached_module(name: str, sources: list[str], tc: Toolchain | None = None, cflags: tuple[str, ...] = CXX_FLAGS,
                  ldflags: tuple[str, ...] = (), key_sources: list[str] | None = None, **extra: str):
    """(module, folder, 'cached' | 'built'): a completed build usable here, else one compiled now
    (under the key's lock), imported; the module is what load_once(name) returns from then on.
    `key_sources` are the files hashed into the key when they differ from those compiled (a source
    that #includes others); `extra` joins the build identity."""
    identity = build_identity(tc, cflags, ldflags, **extra)
    key = cache_key(key_sources or sources, identity)
    archs = tc.archs if tc is not None else None
    module_name = _module_name(name, key)
    final = _build_folder(name, key, archs)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    status = "cached"
    folder = find_build(name, key, archs)
    if folder is None:
        with file_lock.exclusive(final + ".lock", timeout=LOCK_TIMEOUT_S):
            folder = find_build(name, key, archs)  # another builder may have finished meanwhile
            if folder is None:
                status = _compile(name, sources, module_name, tc, final, identity, cflags, ldflags)
                folder = final
    # From the published folder, even just after building (torch's builder imported it from the temp
    # one): the module's file is then the one that stays.
    _loaded[name] = _import_so(module_name, folder)
    _folders[name] = folder
    return _loaded[name], folder, status


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
    start = time.perf_counter()
    try:
        _, folder, status = cached_module(name, source_files(name, source_dir), tc)
    except Exception as exc:  # compiler, linker, import, lock: all reported, none fatal here
        return BuildResult(name, "failed", f"build failed: {_short_error(exc)}. Fix: run `stylegan ops build` "
                           f"for details, or set STYLEGAN_OPS_IMPL=fast", time.perf_counter() - start)
    return BuildResult(name, status, "", time.perf_counter() - start, folder)


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
            if warn:
                _warn_once(f"stylegan: {what} unavailable, using the PyTorch path: {result.reason}", result.reason,
                           stacklevel=3)
    return None


def verify(name: str, module, device: torch.device) -> _selfcheck.Verdict:
    """The first-use check of op `name`'s module on `device`: stored beside the build, else run now
    (once per process and device kind) and stored."""
    label = _selfcheck.device_label(device)
    verdict = _verdicts.get((name, label))
    if verdict is not None:
        return verdict
    with _lock:
        if (name, label) not in _verdicts:
            folder = _folders.get(name)
            verdict = _selfcheck.load_verdict(folder, label) if folder else None
            if verdict is None:
                verdict = _selfcheck.run(name, module, device)
                if folder and verdict.stored:
                    _selfcheck.save_verdict(folder, verdict)
            _verdicts[(name, label)] = verdict
        return _verdicts[(name, label)]


def load_op(name: str, device: torch.device | None = None, required: bool = False):
    """The compiled module for op `name`, checked on `device`, or None (after one warning) if it
    cannot be built or fails its check there. With `required` (the caller forced 'cuda') a failure
    raises OpsBuildError instead."""
    module = load_once(name, lambda: build_op(name), f"CUDA op '{name}'", warn=not required)
    if module is None:
        if required:
            raise OpsBuildError(f"CUDA op '{name}' was forced (STYLEGAN_OPS_IMPL=cuda) but cannot be built: "
                                f"{_failed[name]}")
        return None
    if device is None:
        return module
    verdict = verify(name, module, device)
    if verdict.ok:
        return module
    where = _folders.get(name, "its cache folder")
    message = (f"CUDA op '{name}' failed its first-use check against the reference on {verdict.device}: "
               f"{verdict.detail}. `stylegan ops status` shows the verdict; deleting {where} rebuilds and "
               f"checks again")
    if required:
        raise OpsBuildError(f"{message} (it was forced: STYLEGAN_OPS_IMPL=cuda)")
    _warn_once(f"stylegan: {message}. Using the PyTorch path for it (same numbers, slower)", stacklevel=2)
    return None


def cached_build(name: str, tc: Toolchain, source_dir: str | None = None) -> str | None:
    """Folder of a completed build usable with the current toolchain here, without building."""
    sources = source_files(name, source_dir)
    if tc.problem or not all(os.path.isfile(s) for s in sources):
        return None
    return find_build(name, cache_key(sources, build_identity(tc)), tc.archs)


# ---------------------------------------------------------------- public: what runs, and building ahead of time
def build(name: str, tc: Toolchain | None = None) -> BuildResult:
    """Compile op `name` now, or find it cached, for this machine's toolchain, and with a GPU visible
    run its first-use check there; never raises for an expected failure (the result says why)."""
    result = build_op(name, tc=tc)
    if result.status != "failed" and torch.cuda.is_available():
        result.check = verify(name, _loaded[name], torch.device("cuda", torch.cuda.current_device()))
    return result


@dataclasses.dataclass
class OpStatus:
    name: str
    impl: str    # what runs on a CUDA tensor: 'cuda' | 'fast', or the forced implementation
    reason: str


def _verdicts_text(folder: str) -> str:
    stored = _selfcheck.stored_verdicts(folder)
    if not stored:
        return "; not yet checked on a GPU (the check runs at first use)"
    return "".join(f"; check {v}" for v in stored)


def build_status(tc: Toolchain | None = None) -> list[OpStatus]:
    """Which implementation each fused op will use here, and why, without building or running
    anything (stored first-use verdicts included). Raises ValueError when STYLEGAN_OPS_IMPL names
    no implementation."""
    tc = tc or toolchain()
    forced = requested_impl()
    gpu = torch.cuda.is_available()
    here = [_selfcheck.device_label(torch.device("cuda", i)) for i in range(torch.cuda.device_count())] if gpu else []
    out = []
    for name in OPS:
        # An incomplete install is named before the toolchain: no toolkit can fix it.
        unbuildable = missing_sources(name) or tc.problem
        folder = None if unbuildable else cached_build(name, tc)
        failed = [v for v in (_selfcheck.load_verdict(folder, d) for d in here) if v and not v.ok] if folder else []
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
        elif failed:
            impl, why = "fast", f"built in {folder}, but its check {failed[0]}"
        elif folder:
            impl, why = "cuda", f"built, cached in {folder}"
        else:
            impl, why = "cuda", "will be compiled on first use (or run `stylegan ops build`)"
        if folder and not failed:
            why += _verdicts_text(folder)
        out.append(OpStatus(name, impl, why))
    return out


def reset() -> None:
    """Forget per-process results (tests)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
        _folders.clear()
        _verdicts.clear()
        _warned.clear()
