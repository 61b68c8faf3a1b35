"""A fused kernel proves itself on each kind of device before it computes anything for the user.

Each op module registers a check (`@register("bias_act")`): small fixed inputs in every dtype the
networks run in, the forward and the gradients training and projection take (second order where a
regulariser needs it), computed by the kernel module on the device and by the reference arithmetic
in float64 on the CPU from the same rounded values. A wrong result or a failed launch (a build
without code for this GPU, a driver too old for it) makes the verdict negative; `_build` then warns
once with the numbers and the op takes the PyTorch path. Verdicts are stored beside the build, one
per device kind, so each build runs its check once per GPU model and driver.

This module knows no op: the ops register here, `_build` asks here.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Callable, Sequence

import torch

VERSION = 1  # part of each stored verdict's name: changing the checks makes old verdicts unused
DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Largest error allowed, relative to the reference's largest magnitude: float32 against float64
# leaves ~1e-6 here; half precision rounds each input, output and stored gradient (2^-11, 2^-8).
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 4e-2}

CHECKS: dict[str, Callable[[Any, torch.device], list["Comparison"]]] = {}


def register(name: str):
    """Decorator: `fn(K, device) -> [Comparison]` checks the compiled module K of op `name`."""
    def add(fn):
        CHECKS[name] = fn
        return fn
    return add


@dataclasses.dataclass
class Comparison:
    what: str
    error: float      # max |kernel - reference| / max |reference|
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.error <= self.tolerance  # NaN fails

    def __str__(self) -> str:
        return f"{self.what}: error {self.error:.2e} (tolerance {self.tolerance:.0e})"


@dataclasses.dataclass
class Verdict:
    ok: bool
    device: str
    detail: str            # the worst comparison, or the launch error
    stored: bool = True    # False for errors worth retrying in the next process (e.g. out of memory)

    def __str__(self) -> str:
        return f"{'passed' if self.ok else 'FAILED'} on {self.device}: {self.detail}"


def compare(what: str, got: torch.Tensor | None, want: torch.Tensor | None, dtype: torch.dtype) -> Comparison:
    got = torch.zeros_like(want) if got is None else got.detach().to("cpu", torch.float64)
    want = torch.zeros_like(got) if want is None else want.detach().to(torch.float64)
    scale = float(want.abs().max()) if want.numel() else 0.0
    err = float((got - want).abs().max()) / max(scale, 1e-30) if want.numel() else 0.0
    if got.shape != want.shape:
        err = float("inf")
    return Comparison(what, err, TOLERANCE[dtype])


def against_reference(what: str, run: Callable, ref: Callable, inputs: Sequence[torch.Tensor], device: torch.device,
                      dtype: torch.dtype, second_order: bool = False, seed: int = 0) -> list[Comparison]:
    """`run(*inputs)` on the device in `dtype` against `ref(*inputs)` in float64 on the CPU, from the
    same values (rounded to `dtype` first): the output, the gradient of <y, dy> with respect to each
    input and, with `second_order`, the gradient of <dx, v> with respect to every input and dy (what
    R1 and path length regularisation differentiate)."""
    g = torch.Generator().manual_seed(seed)
    rounded = [t.to(dtype) for t in inputs]
    xk = [t.to(device).requires_grad_(True) for t in rounded]
    xr = [t.to(torch.float64).requires_grad_(True) for t in rounded]
    yk, yr = run(*xk), ref(*xr)
    out = [compare(f"{what} {_name(dtype)} forward", yk, yr, dtype)]
    dy = torch.randn(yr.shape, generator=g, dtype=torch.float64).to(dtype)
    dyk = dy.to(device).requires_grad_(second_order)
    dyr = dy.to(torch.float64).requires_grad_(second_order)
    gk = torch.autograd.grad(yk, xk, dyk, create_graph=second_order)
    gr = torch.autograd.grad(yr, xr, dyr, create_graph=second_order)
    out += [compare(f"{what} {_name(dtype)} gradient {i}", a, b, dtype) for i, (a, b) in enumerate(zip(gk, gr))]
    if second_order:
        v = torch.randn(gr[0].shape, generator=g, dtype=torch.float64).to(dtype)
        sk = (gk[0] * v.to(device)).sum()
        sr = (gr[0] * v.to(torch.float64)).sum()
        ggk = torch.autograd.grad(sk, [*xk, dyk], allow_unused=True)
        ggr = torch.autograd.grad(sr, [*xr, dyr], allow_unused=True)
        out += [compare(f"{what} {_name(dtype)} second order {i}", a, b, dtype)
                for i, (a, b) in enumerate(zip(ggk, ggr)) if a is not None or b is not None]
    return out


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def run(name: str, K, device: torch.device) -> Verdict:
    """Run op `name`'s check on `device` with module K. It leaves the caller's state alone: its own
    random generator, gradients on, autocast off, whatever the context of the first call."""
    label = device_label(device)
    check = CHECKS.get(name)
    if check is None:
        return Verdict(True, label, "no check registered", stored=False)
    try:
        with torch.inference_mode(False), torch.enable_grad(), _no_autocast(device):
            results = check(K, device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # a failed launch may only show here
    except torch.cuda.OutOfMemoryError as exc:
        return Verdict(False, label, f"out of memory during the check: {_first_line(exc)}", stored=False)
    except Exception as exc:  # a launch error is a RuntimeError (AcceleratorError) from the kernel call
        return Verdict(False, label, f"the kernel failed to run: {type(exc).__name__}: {_first_line(exc)}")
    worst = max(results, key=lambda c: c.error / c.tolerance if c.error == c.error else float("inf"))
    failed = [c for c in results if not c.ok]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return Verdict(False, label, f"{worst}{more}")
    return Verdict(True, label, f"{len(results)} comparisons, worst {worst}")


def _no_autocast(device: torch.device):
    return torch.autocast(device.type, enabled=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- device kinds and stored verdicts
def device_label(device: torch.device) -> str:
    """'NVIDIA H100 80GB HBM3 (sm_90, driver 12080)', or 'cpu' for the CPU emulation."""
    if device.type != "cuda":
        return device.type
    props = torch.cuda.get_device_properties(device)
    driver = getattr(torch._C, "_cuda_getDriverVersion", lambda: 0)()
    return f"{props.name} (sm_{props.major}{props.minor}, driver {driver})"


def _file(folder: str, label: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower()
    return os.path.join(folder, f"selfcheck-v{VERSION}-{safe}.json")


def _read(path: str) -> Verdict | None:
    try:
        with open(path) as f:
            data = json.load(f)
        return Verdict(bool(data["ok"]), data["device"], str(data["detail"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_verdict(folder: str, label: str) -> Verdict | None:
    return _read(_file(folder, label))


def save_verdict(folder: str, verdict: Verdict) -> None:
    """Beside the build; a read-only cache (a shared, prebuilt one) just keeps it in this process."""
    path = _file(folder, verdict.device)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump({"ok": verdict.ok, "device": verdict.device, "detail": verdict.detail}, f)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def stored_verdicts(folder: str) -> list[Verdict]:
    """Every verdict stored for the build in `folder` (all device kinds), for `stylegan ops status`."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    prefix = f"selfcheck-v{VERSION}-"
    verdicts = [_read(os.path.join(folder, n)) for n in names if n.startswith(prefix) and n.endswith(".json")]
    return [v for v in verdicts if v is not None]


# ---------------------------------------------------------------- inputs shared by the ops' checks
def randn(*shape: int, seed: int) -> torch.Tensor:
    """Fixed float64 CPU values from the check's own generator (the user's RNG stays untouched)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def away_from(v: torch.Tensor, points: Sequence[float], margin: float) -> torch.Tensor:
    """v with every value within `margin` of a point moved `2 * margin` away: derivatives are one-sided
    at kinks (0, the clamp), where float32 and float64 may take different sides."""
    for p in points:
        near = (v - p).abs() < margin
        v = torch.where(near, v + torch.where(v >= p, 2 * margin, -2 * margin), v)
    return v
