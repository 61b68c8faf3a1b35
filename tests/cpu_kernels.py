"""A CPU build of the fused kernels' maths (ops/cuda/cpu_check.cpp), cached like the real ops.

It compiles the kernels' host code and per-element/per-stage functions with the C++ compiler, so
the indexing, tiling and gradient formulas of the CUDA path are checked on any machine."""
from __future__ import annotations

import glob
import os
import shutil
import tempfile

import torch

from ops import _build

SOURCE = os.path.join(_build.SOURCE_DIR, "cpu_check.cpp")


def load():
    """The compiled module (built once per source hash and torch version)."""
    # cpu_check.cpp #includes the ops' .cpp files, so they are part of the key too.
    key = _build.cache_key(sorted(glob.glob(os.path.join(_build.SOURCE_DIR, "*.cpp"))), torch.__version__, "cpu", [])
    name = f"stylegan_cpu_check_{key}"
    final = os.path.join(_build.cache_dir(), f"cpu_check-{key}")
    os.makedirs(_build.cache_dir(), exist_ok=True)
    with _build.build_lock(final + ".lock"):
        if not os.path.isfile(os.path.join(final, _build.DONE_MARKER)):
            from torch.utils import cpp_extension
            tmp = tempfile.mkdtemp(prefix=f".cpu_check-{key}.tmp-", dir=_build.cache_dir())
            try:
                cpp_extension.load(name=name, sources=[SOURCE], build_directory=tmp, extra_cflags=["-O2"],
                                   with_cuda=False, verbose=False)
                open(os.path.join(tmp, _build.DONE_MARKER), "w").close()
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        import sys
        return sys.modules.get(name) or _build._import_so(name, final)
