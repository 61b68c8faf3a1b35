"""Random upfirdn2d argument sets shared by the ops tests (reference path and kernels)."""
from __future__ import annotations

import random


def upfirdn2d_cases(n: int, seed: int):
    """Up to n cases: filter shape (1-D separable or 2-D), up/down factors, padding (negative = crop),
    input size, flip and gain; cases whose crop exceeds the padded signal are left out."""
    rng = random.Random(seed)
    for _ in range(n):
        sep = rng.random() < 0.5
        kw, kh = rng.randint(1, 7), rng.randint(1, 7)
        case = dict(f=(kw,) if sep else (kh, kw), up=(rng.randint(1, 4), rng.randint(1, 4)),
                    down=(rng.randint(1, 4), rng.randint(1, 4)), pad=[rng.randint(-2, 5) for _ in range(4)],
                    hw=(rng.choice([3, 5, 8, 130]), rng.choice([2, 7, 9, 131])), flip=rng.random() < 0.5,
                    gain=rng.choice([1.0, 2.5]))
        out_w = (case["hw"][1] * case["up"][0] + case["pad"][0] + case["pad"][1] - kw + case["down"][0]) // case["down"][0]
        out_h = (case["hw"][0] * case["up"][1] + case["pad"][2] + case["pad"][3] - (kw if sep else kh) + case["down"][1]) // case["down"][1]
        # Skip cases whose cropping eats more than the padded signal (undefined in the reference).
        if out_w >= 1 and out_h >= 1 and min(case["pad"]) > -min(case["hw"]):
            yield case


def nvidia_filtered_lrelu_kept_bytes(x_shape, fu_shape, fd_shape, up: int, down: int, padding) -> int:
    """Bytes NVIDIA's filtered_lrelu keeps for its backward on its fused-kernel path (stylegan3,
    torch_utils/ops/filtered_lrelu.py and .cpp) beyond tensors resident anyway: the sign tensor, uint8
    [N, C, (yh - 1) * down + fdh, w / 4] with w = (yw - 1) * down + fdw rounded up to 16, plus a fresh
    [1, 1] float32 ones filter for each filter given as None. `fu_shape`/`fd_shape`: None, [k] or [h, w]."""
    n, c, h, w = x_shape
    (fuh, fuw), (fdh, fdw) = [(1, 1) if s is None else (s[0], s[-1]) for s in (fu_shape, fd_shape)]
    px0, px1, py0, py1 = padding
    yw = (w * up + px0 + px1 - (fuw - 1) - (fdw - 1) + (down - 1)) // down
    yh = (h * up + py0 + py1 - (fuh - 1) - (fdh - 1) + (down - 1)) // down
    sign_w = ((yw - 1) * down + fdw + 15) // 16 * 16
    ones = 4 * ((fu_shape is None) + (fd_shape is None))
    return n * c * ((yh - 1) * down + fdh) * (sign_w // 4) + ones
