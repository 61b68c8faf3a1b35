"""A CPU build of the fused kernels' maths (ops/cuda/cpu_check.cpp), cached like the real ops.

It compiles the kernels' host code and per-element/per-stage functions with the C++ compiler, so
the indexing, tiling and gradient formulas of the CUDA path are checked on any machine."""
from __future__ import annotations

import glob
import os

from ops import _build

SOURCE = os.path.join(_build.SOURCE_DIR, "cpu_check.cpp")


def load():
    """The compiled module (built once per source hash and build identity)."""
    # cpu_check.cpp #includes the ops' .cpp files, so they are part of the key too.
    module, _, _ = _build.cached_module("cpu_check", [SOURCE], None,
                                        key_sources=sorted(glob.glob(os.path.join(_build.SOURCE_DIR, "*.cpp"))))
    return module
