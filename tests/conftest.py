"""Shared test fixtures: the reference data made by running NVIDIA's and rosinality's code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("STYLEGAN_REFERENCE_DIR", REPO.parent / "shared" / "reference"))

NVIDIA_FIXTURES = ["sg2ada_skip", "sg2ada_resnet_cond", "sg2ada_orig", "sg3_sg2", "sg3_t", "sg3_r"]
SG2_FIXTURES = ["sg2ada_skip", "sg2ada_resnet_cond", "sg2ada_orig", "sg3_sg2"]
SG3_FIXTURES = ["sg3_t", "sg3_r"]

# Reformulated float32 arithmetic stays within ~5e-6 of the reference on these fixtures (README).
IMG_ATOL = 1e-5


def reference_path(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.exists():
        # Locally a missing fixture folder skips; in CI it must never pass silently.
        message = f"reference fixture {path} not found (set STYLEGAN_REFERENCE_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_npz(name: str) -> dict[str, np.ndarray]:
    with np.load(reference_path(f"{name}.npz"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def prefixed(npz: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    """State dict stored under `prefix/` in a fixture npz, in its original order."""
    n = len(prefix) + 1
    return {k[n:]: torch.from_numpy(v) for k, v in npz.items() if k.startswith(prefix + "/")}


def init_kwargs(npz: dict[str, np.ndarray], key: str = "init_kwargs") -> dict:
    return json.loads(str(npz[key]))


def dead_pid() -> int:
    """The PID of a process that has exited (as a writer killed outright leaves in its temp names)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
