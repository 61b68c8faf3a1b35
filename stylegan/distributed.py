"""The few torchrun facts every multi-process story needs: which rank this is, how many there are,
and a barrier. Plain launches are rank 0 of 1 and every call here is then free."""
from __future__ import annotations

import os


def rank_and_world() -> tuple[int, int]:
    """(rank, world_size) from torchrun's environment; (0, 1) when launched plainly."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    """True on the rank that writes shared outputs (rank 0)."""
    return rank_and_world()[0] == 0


def init(backend: str | None = None) -> None:
    """Join torchrun's process group once (NCCL when CUDA is available, else gloo); no-op when plain."""
    if rank_and_world()[1] <= 1:
        return
    import torch
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))


def barrier() -> None:
    """Wait for every rank (no-op when not launched by torchrun)."""
    if rank_and_world()[1] <= 1:
        return
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")     # a barrier between file writers needs no GPU
    dist.barrier()
