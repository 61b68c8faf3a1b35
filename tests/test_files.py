"""Atomic output and the sweep of temporaries abandoned by writers that were killed outright."""
from __future__ import annotations

import os
import time

import pytest

from conftest import dead_pid
from stylegan.io import files as io_files


def test_atomic_output_replaces_only_when_complete(tmp_path):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with io_files.atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.png"]
    with io_files.atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.") and tmp.suffix == ".png"
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # nobody sees the new file before it is whole
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["a.png"]


def test_sweep_removes_only_abandoned_temporaries(tmp_path):
    host = io_files._HOST
    dead = tmp_path / f".seed0003.{host}-{dead_pid()}.tmp.png"
    live = tmp_path / f".seed0004.{host}-{os.getpid()}.tmp.png"
    foreign_fresh = tmp_path / f".seed0005.otherhost-{os.getpid()}.tmp.png"
    foreign_old = tmp_path / f".seed0006.otherhost-1.tmp.png"
    unrelated = [tmp_path / "seed0007.png", tmp_path / ".hidden", tmp_path / f".x.{host}-notapid.tmp.png"]
    for p in [dead, live, foreign_fresh, foreign_old, *unrelated]:
        p.write_bytes(b"x")
    old = time.time() - 2 * io_files.FOREIGN_STALE_S
    os.utime(foreign_old, (old, old))
    assert io_files.sweep_stale_temps(tmp_path) == 2
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [live, foreign_fresh, *unrelated])
    assert io_files.sweep_stale_temps(tmp_path / "absent") == 0
