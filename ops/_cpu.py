"""Compiled CPU kernels (`ops/cpu/NAME_cpu.cpp`) for the ops whose PyTorch form spends its time
moving memory (filtered_lrelu, forward only) or multiplying more than it must (conv3x3, by
Winograd's algorithm; its backward to the input is the same kernel, see ops/conv3x3.py).

They are built for this very CPU (-march=native) with the host C++ compiler on first use and cached
like the CUDA ops, keyed by the sources, the build identity (torch, Python, compiler, flags) and the
CPU's instruction-set flags, so a cache shared by different machines holds one build per kind of CPU. They compute the 'fast' path's
numbers up to float32 rounding; that path runs instead where a kernel does not apply (gradients
through filtered_lrelu, or into conv3x3's weight), when a kernel cannot be built (after one
warning), or when STYLEGAN_CPU_KERNELS=0.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sys
import time

from . import _build

CPU_OPS = ("filtered_lrelu", "conv3x3")
SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu")
ENV_VAR = "STYLEGAN_CPU_KERNELS"
# at::parallel_for spreads work over torch's threads only in code compiled with OpenMP (Linux's g++
# and clang have it; elsewhere the kernels run on one thread).
OPENMP = ("-fopenmp",) if sys.platform.startswith("linux") else ()
CFLAGS = ("-O3", "-march=native", *OPENMP)


def enabled() -> bool:
    """False when STYLEGAN_CPU_KERNELS=0 turns the compiled CPU kernels off."""
    return os.environ.get(ENV_VAR, "1").strip() != "0"


def source(name: str) -> str:
    return os.path.join(SOURCE_DIR, f"{name}_cpu.cpp")


def isa_signature() -> str:
    """The CPU's instruction-set flags (what -march=native compiles for), hashed."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() in ("flags", "Features"):
                    flags = line.split(":", 1)[1]
                    break
    except OSError:
        pass
    text = f"{platform.machine()} {platform.processor()} {' '.join(sorted(flags.split()))}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def problem() -> str | None:
    """Why no CPU kernel can be built here, or None."""
    missing = [os.path.basename(source(n)) for n in CPU_OPS if not os.path.isfile(source(n))]
    if missing:
        return _build.incomplete_install(SOURCE_DIR, ", ".join(missing))
    if _build.missing_ninja():
        return _build.missing_ninja()
    cxx = os.environ.get("CXX", "c++")
    if not shutil.which(cxx):
        return f"no C++ compiler ({cxx}) found. Fix: install g++ or clang, or set CXX"
    return None


def _key(name: str) -> str:
    return _build.cache_key([source(name)], _build.build_identity(None, CFLAGS, OPENMP, isa=isa_signature()))


def _cache_name(name: str) -> str:
    """Its name in the ops cache and in `_build`'s per-process registry, apart from the CUDA op's."""
    return f"{name}_cpu"


def cached(name: str) -> str | None:
    """Folder of a complete build of kernel `name` for this CPU, without building."""
    return _build.complete_build(_cache_name(name), _key(name)) if os.path.isfile(source(name)) else None


def build(name: str) -> _build.BuildResult:
    """Compile kernel `name` now, or find it cached; never raises for an expected failure."""
    label = f"{name} (cpu)"
    why = problem()
    if why:
        return _build.BuildResult(label, "failed", why)
    start = time.perf_counter()
    try:
        _, final, status = _build.cached_module(_cache_name(name), [source(name)], None, CFLAGS, OPENMP,
                                                isa=isa_signature())
    except Exception as exc:
        return _build.BuildResult(label, "failed", f"build failed: {_build._short_error(exc)}. Fix: run "
                                  f"`stylegan ops build` for details, or set {ENV_VAR}=0", time.perf_counter() - start)
    return _build.BuildResult(label, status, "", time.perf_counter() - start, final)


def load(name: str):
    """The compiled kernel module for `name`, or None (after one warning) when it cannot be had."""
    if not enabled():
        return None
    return _build.load_once(_cache_name(name), lambda: build(name), f"CPU kernel '{name}'")


def status(name: str) -> _build.OpStatus:
    """What CPU inference will use for `name`, and why, without building anything."""
    if not enabled():
        return _build.OpStatus(name, "fast", f"CPU kernel off ({ENV_VAR}=0)")
    why = problem()
    if why:
        return _build.OpStatus(name, "fast", f"CPU kernel unavailable: {why}")
    folder = cached(name)
    if folder:
        return _build.OpStatus(name, "cpu", f"CPU kernel built for this CPU, cached in {folder}")
    return _build.OpStatus(name, "cpu", "CPU kernel compiled for this CPU on first use "
                                        "(or run `stylegan ops build --cpu-only`)")
