"""The fused ops' build cache (CPU only): what the key holds, which cached build a GPU may use, and
the lock and publication that keep two builders (two nodes, two containers) from breaking each other."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pytest
import torch

from ops import _build
from torch_utils import file_lock
from torch_utils.processes import owner_record

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEGAN_OPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    _build.reset()
    yield tmp_path / "cache"
    _build.reset()


def _gpus(monkeypatch, *caps):
    """Pretend these GPUs are visible (compute capabilities)."""
    monkeypatch.setattr(_build, "visible_capabilities", lambda: sorted(set(caps)))


# ---------------------------------------------------------------- the key
def _fake_compiler(folder, name, version):
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(0o755)
    return str(path)


def test_cache_key_holds_everything_that_changes_the_binary(tmp_path, monkeypatch):
    """Python ABI, torch, host compiler (path and version), flags, CUDA toolkit path and version,
    sources and headers each change the key; the GPU architectures do not (the folder records those)."""
    src = [tmp_path / "op.cpp", tmp_path / "op.cu"]
    for f in src:
        f.write_text("x")
    src = [str(f) for f in src]
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, "g++-a", "g++ 12.2.0"))
    tc = _build.Toolchain(root="/opt/cuda-13.0", nvcc_version="13.0", archs=["8.0"])

    def key(tc=tc, **kw):
        _build._compiler_identity.cache_clear()
        return _build.cache_key(src, _build.build_identity(tc, **kw))

    base = key()
    assert base == key() == key(dataclasses.replace(tc, archs=["9.0+PTX"]))
    changed = {"toolkit path": key(dataclasses.replace(tc, root="/usr/local/cuda-13.0")),
               "nvcc": key(dataclasses.replace(tc, nvcc_version="12.8")),
               "flags": key(cflags=("-O2",)), "ld flags": key(ldflags=("-lfoo",)), "C++ only": key(None)}
    with monkeypatch.context() as m:
        m.setattr(_build, "python_abi", lambda: ".cpython-312-x86_64-linux-gnu.so")
        changed["python"] = key()
    with monkeypatch.context() as m:
        m.setattr(torch, "__version__", "2.99.0")
        changed["torch"] = key()
    _fake_compiler(tmp_path, "g++-a", "g++ 13.1.0")  # same path, another version
    changed["compiler version"] = key()
    monkeypatch.setenv("CXX", _fake_compiler(tmp_path, "clang++", "g++ 13.1.0"))
    changed["compiler"] = key()
    (tmp_path / "op.h").write_text("header")
    changed["header"] = key()
    assert all(v != base for v in changed.values()), [k for k, v in changed.items() if v == base]
    assert len(set(changed.values())) == len(changed)


def _fake_build(monkeypatch, calls=None):
    """torch's extension builder replaced by one that leaves an empty NAME.so, as torch names it."""
    def run(module_name, sources, folder, tc, cflags, ldflags):
        if calls is not None:
            calls.append(folder)
        open(os.path.join(folder, module_name + ".so"), "w").close()

    monkeypatch.setattr(_build, "_run_compiler", run)
    monkeypatch.setattr(_build, "_import_so", lambda m, f: (m, f))


def test_a_build_carries_its_python_abi_tag_and_identity(cache, monkeypatch, tmp_path):
    src = tmp_path / "op.cpp"
    src.write_text("//")
    _fake_build(monkeypatch)
    (name, folder), _, status = _build.cached_module("op", [str(src)])
    assert status == "built" and os.path.isfile(os.path.join(folder, name + _build.python_abi()))
    assert _build.python_abi().startswith(".cpython-") or _build.python_abi().startswith(".pypy")
    assert _build._marker(folder) == {"archs": None, "identity": _build.build_identity(None)}


# ---------------------------------------------------------------- architectures
def test_covers():
    assert _build.covers(["8.0"], (8, 6)) and _build.covers(["8.0"], (8, 0))
    assert not _build.covers(["8.6"], (8, 0)) and not _build.covers(["8.0", "8.6"], (9, 0))
    assert _build.covers(["9.0+PTX"], (10, 0)) and not _build.covers(["9.0+PTX"], (10, 0), sass_only=True)
    assert not _build.covers(["9.0a"], (9, 1)) and _build.covers(["9.0a"], (9, 0))
    assert not _build.covers(["10.0+PTX"], (9, 0)) and not _build.covers(["Hopper"], (9, 0))


def test_arch_list_adds_the_visible_gpu_an_env_list_misses(monkeypatch):
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0;8.6")
    _build.reset()
    _gpus(monkeypatch, (9, 0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _build.arch_list() == ["8.0", "8.6", "9.0"]
        assert _build.arch_list() == ["8.0", "8.6", "9.0"]
    msgs = [str(w.message) for w in caught if issubclass(w.category, _build.OpsBuildWarning)]
    assert len(msgs) == 1 and "'8.0;8.6' does not cover" in msgs[0] and "9.0" in msgs[0]
    _gpus(monkeypatch, (8, 6))  # covered: the list as given, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _build.arch_list() == ["8.0", "8.6"]
    _build.reset()


def _published(cache, name, key, archs):
    """A completed build in the cache as another machine left it."""
    folder = _build._build_folder(name, key, archs)
    os.makedirs(folder)
    with open(os.path.join(folder, _build.DONE_MARKER), "w") as f:
        json.dump({"archs": archs, "identity": {}}, f)
    return folder


def test_a_build_made_ahead_is_found_on_any_gpu_it_covers(cache, monkeypatch):
    """Built on a node without a GPU (the default list), looked up on GPU nodes whose own list
    differs: used wherever its code runs, machine code preferred over PTX, never where it cannot run."""
    ahead = _published(cache, "op", "k", list(_build.DEFAULT_ARCHS))
    _gpus(monkeypatch, (9, 0))
    assert _build.find_build("op", "k", ["9.0+PTX"]) == ahead
    _gpus(monkeypatch, (8, 0), (8, 6))
    assert _build.find_build("op", "k", ["8.0", "8.6+PTX"]) == ahead
    _gpus(monkeypatch, (10, 0))  # by PTX only
    assert _build.find_build("op", "k", ["10.0+PTX"]) == ahead
    _gpus(monkeypatch, (7, 5))
    assert _build.find_build("op", "k", ["7.5+PTX"]) is None
    sass = _published(cache, "op", "k", ["10.0"])
    _gpus(monkeypatch, (10, 0))
    assert _build.find_build("op", "k", ["10.0+PTX"]) == sass
    exact = _published(cache, "op", "k", ["10.0+PTX"])
    assert _build.find_build("op", "k", ["10.0+PTX"]) == exact
    _gpus(monkeypatch)  # no GPU (a build node): only the list asked for
    assert _build.find_build("op", "k", ["8.0"]) is None
    assert _build.find_build("op", "k", list(_build.DEFAULT_ARCHS)) == ahead
    assert _build.find_build("other", "k", ["10.0+PTX"]) is None and _build.find_build("op", "k2", ["10.0"]) is None


# ---------------------------------------------------------------- the lock
def _write_lock(path, **record):
    path.write_text(json.dumps(dict(owner_record(), **record)))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_lock_of_a_dead_process_here_is_taken_at_once(tmp_path):
    lock = tmp_path / "x.lock"
    _write_lock(lock, pid=_dead_pid())
    t = time.monotonic()
    with file_lock.exclusive(str(lock), timeout=5, stale_after=60):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert time.monotonic() - t < 3 and not lock.exists()


def test_lock_from_another_node_is_waited_on_while_its_heartbeat_runs(tmp_path):
    """A PID from another host means nothing here (it may be dead or alive): the heartbeat decides.
    While the owner's heartbeat moves, the lock is waited on (never taken); once silent, taken."""
    lock = tmp_path / "x.lock"
    _write_lock(lock, host="node-b", pid=_dead_pid())
    stop = threading.Event()

    def beat():
        while not stop.wait(0.05):
            os.utime(lock)

    beater = threading.Thread(target=beat)
    beater.start()
    try:
        with pytest.raises(TimeoutError, match="on node-b"):
            with file_lock.exclusive(str(lock), timeout=1.0, poll=0.05, stale_after=0.5):
                pass
        assert json.loads(lock.read_text())["host"] == "node-b"  # left alone
    finally:
        stop.set()
        beater.join()
    t = time.monotonic()
    with file_lock.exclusive(str(lock), timeout=10, poll=0.05, stale_after=0.5):
        assert json.loads(lock.read_text())["host"] == owner_record()["host"]
    assert 0.4 < time.monotonic() - t < 5


def test_a_holder_keeps_its_lock_alive_by_heartbeat(tmp_path):
    """A build longer than the staleness limit is not taken over: its holder's heartbeat runs."""
    lock = str(tmp_path / "x.lock")
    order = []

    def holder():
        with file_lock.exclusive(lock, stale_after=0.4, heartbeat=0.05):
            order.append("held")
            time.sleep(1.5)
            order.append("released")

    t = threading.Thread(target=holder)
    t.start()
    while not order:
        time.sleep(0.01)
    with file_lock.exclusive(lock, timeout=10, poll=0.05, stale_after=0.4, heartbeat=0.05):
        order.append("taken")
    t.join()
    assert order == ["held", "released", "taken"]


# ---------------------------------------------------------------- two builders on one cache
BUILDER = textwrap.dedent("""
    import json, os, socket, sys, time
    sys.path.insert(0, {repo!r})
    from ops import _build
    from torch_utils import file_lock

    me, log, stale = sys.argv[1], sys.argv[2], float(sys.argv[3])
    socket.gethostname = lambda: me  # each builder on its own node: PIDs say nothing across them
    file_lock.STALE_AFTER_S, file_lock.HEARTBEAT_S = stale, 60.0

    def compile_slowly(module_name, sources, folder, tc, cflags, ldflags):
        with open(log, "a") as f:
            f.write(me + " start\\n")
        time.sleep(1.5)
        assert os.path.isdir(folder), "my build folder was deleted under me"
        open(os.path.join(folder, module_name + ".so"), "w").write(me)
        with open(log, "a") as f:
            f.write(me + " done\\n")

    _build._run_compiler = compile_slowly
    _build._import_so = lambda name, folder: open(os.path.join(folder, name + _build.python_abi())).read()
    src = os.path.join(os.path.dirname(os.environ["STYLEGAN_OPS_CACHE"]), "op.cpp")
    module, folder, status = _build.cached_module("op", [src], None)
    print(json.dumps(dict(module=module, folder=os.path.basename(folder), status=status)))
""")


def _two_builders(tmp_path, stale):
    (tmp_path / "op.cpp").write_text("// an op")
    script = tmp_path / "builder.py"
    script.write_text(BUILDER.format(repo=REPO))
    env = dict(os.environ, STYLEGAN_OPS_CACHE=str(tmp_path / "cache"))
    log = tmp_path / "log"
    procs = []
    for node in ("node-a", "node-b"):
        procs.append(subprocess.Popen([sys.executable, str(script), node, str(log), str(stale)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(0.5 if not procs[1:] else 0)  # node-a holds the lock when node-b arrives
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    leftovers = [n for n in os.listdir(tmp_path / "cache") if ".tmp-" in n or n.endswith(".lock")]
    return outs, log.read_text().split("\n"), leftovers


def test_two_builders_one_build(tmp_path):
    """Two nodes build the same op at once: the second waits on the first's lock (heartbeat alive),
    then uses its build. One compile, one folder, nothing left behind."""
    outs, log, leftovers = _two_builders(tmp_path, stale=60.0)
    assert sorted(o["status"] for o in outs) == ["built", "cached"]
    assert outs[0]["folder"] == outs[1]["folder"] and outs[0]["module"] == outs[1]["module"]
    assert sum("start" in line for line in log) == 1 and leftovers == []


def test_two_builders_that_misjudge_the_lock_both_succeed(tmp_path):
    """Even when the second takes the lock as stale (a heartbeat it could not see), nobody's folder
    is deleted: both compile into their own, the first to publish wins, both load that one."""
    outs, log, leftovers = _two_builders(tmp_path, stale=0.0)
    assert sum("start" in line for line in log) == 2 and sum("done" in line for line in log) == 2
    assert sorted(o["status"] for o in outs) == ["built", "cached"]
    assert outs[0]["module"] == outs[1]["module"] and leftovers == []


def test_leftover_temp_folders_removed_only_when_their_builder_is_gone(cache):
    final = _build._build_folder("op", "k")
    os.makedirs(os.path.dirname(final))
    folders = {}
    for who, record in (("dead here", dict(owner_record(), pid=_dead_pid())), ("alive here", owner_record()),
                        ("other node", dict(owner_record(), host="node-b", pid=_dead_pid()))):
        folders[who] = f"{os.path.dirname(final)}/.{os.path.basename(final)}.tmp-{len(folders)}"
        os.makedirs(folders[who])
        with open(os.path.join(folders[who], _build.OWNER_FILE), "w") as f:
            json.dump(record, f)
    _build._clear_leftovers(final)
    assert {who: os.path.isdir(f) for who, f in folders.items()} == {"dead here": False, "alive here": True,
                                                                     "other node": True}
    old = time.time() - _build.LEFTOVER_AGE_S - 60
    os.utime(folders["other node"], (old, old))
    _build._clear_leftovers(final)
    assert not os.path.isdir(folders["other node"]) and os.path.isdir(folders["alive here"])


def test_unfinished_folder_at_the_final_name_is_replaced(cache, monkeypatch, tmp_path):
    """An unfinished folder where a build should be (no marker: an old version's leftover) is not
    loaded: the build is redone and published in its place."""
    src = tmp_path / "op.cpp"
    src.write_text("//")
    key = _build.cache_key([str(src)], _build.build_identity(None))
    final = _build._build_folder("op", key)
    os.makedirs(final)
    open(os.path.join(final, "half.o"), "w").close()
    calls = []
    _fake_build(monkeypatch, calls)
    assert _build.cached_module("op", [str(src)])[2] == "built"
    assert len(calls) == 1 and not os.path.exists(os.path.join(final, "half.o"))
    _build.reset()
    assert _build.cached_module("op", [str(src)])[2] == "cached" and len(calls) == 1
