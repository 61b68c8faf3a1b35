"""What autograd keeps for the backward: the memory a training step holds between forward and backward."""
from __future__ import annotations

import torch


class SavedTensors:
    """Within the block, record every tensor autograd saves for a backward, each storage once.

    `exclude` names tensors resident anyway (parameters, buffers, inputs the caller holds): their
    storages are not counted. Works on any device, meta included, since only sizes are read.

        with SavedTensors(exclude=G.parameters()) as saved:
            img = G(z, c)
        print(saved.nbytes)
    """

    def __init__(self, exclude=()):
        self._exclude = {self._key(t) for t in exclude}
        self.storages: dict[int, int] = {}  # storage identity -> bytes
        self._hooks = None

    @staticmethod
    def _key(t: torch.Tensor) -> int:
        # The StorageImpl's address: one per storage, shared by its views, distinct on the meta device
        # too (where every data pointer is 0). The pack hook keeps each tensor alive, so no address is
        # reused while the block runs.
        return t.untyped_storage()._cdata

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        key = self._key(t)
        if key not in self._exclude:
            self.storages.setdefault(key, t.untyped_storage().nbytes())
        return t

    def __enter__(self) -> "SavedTensors":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    @property
    def nbytes(self) -> int:
        return sum(self.storages.values())
