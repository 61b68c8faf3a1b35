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


def gather_interleaved(x, world_size: int):
    """Every rank's tensor x [N, ...], interleaved sample by sample into [world_size * N, ...] on every
    rank: the order NVIDIA's metrics give features that ranks computed for items r, r + W, r + 2W, ..."""
    if world_size <= 1:
        return x
    import torch
    import torch.distributed as dist
    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.stack(parts, dim=1).flatten(0, 1)


def all_sum(x, world_size: int):
    """x summed over the ranks (in place), returned; x itself when plain."""
    if world_size > 1:
        import torch.distributed as dist
        dist.all_reduce(x)
    return x


def broadcast(x, world_size: int, src: int = 0):
    """Rank `src`'s x, on every rank (in place), returned; x itself when plain."""
    if world_size > 1:
        import torch.distributed as dist
        dist.broadcast(x, src=src)
    return x
