"""The restricted unpickler: hostile pickles fail by name and nothing in them runs."""
from __future__ import annotations

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

import stylegan
from stylegan import LoadError
from stylegan.loaders.safe_pickle import PersistentObject, UnsafePickleError, load_storage_bytes, safe_load

from conftest import IMG_ATOL, load_npz, reference_path


def global_call(module: str, name: str, *args) -> bytes:
    """A protocol-2 pickle calling module.name(*args) (GLOBAL, arguments, REDUCE)."""
    body = pickle.dumps(tuple(args), protocol=2)[2:-1]   # the args tuple without PROTO/STOP
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + body + b"R."


class Marker:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


def assert_refused(tmp_path, data: bytes, name: str, marker=None):
    path = tmp_path / "evil.pkl"
    path.write_bytes(data)
    with pytest.raises(LoadError) as e:
        stylegan.load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and name in msg
    if marker is not None:
        assert not os.path.exists(marker)
    return msg


def test_reduce_calling_os_system(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"G_ema": Marker(marker)}, protocol=4)
    assert_refused(tmp_path, data, "system", marker)


@pytest.mark.parametrize("module, name, args", [
    ("builtins", "eval", ("__import__('os').system('touch {m}')",)),
    ("builtins", "exec", ("open('{m}', 'w').close()",)),
    ("builtins", "getattr", (os, "system")),
    ("builtins", "__import__", ("os",)),
    ("subprocess", "Popen", (["touch", "{m}"],)),
    ("posix", "system", ("touch {m}",)),
    ("nt", "system", ("touch {m}",)),
    ("os", "system", ("touch {m}",)),
    ("torch", "load", ("{m}",)),
    ("torch.serialization", "load", ("{m}",)),
    ("numpy", "load", ("{m}",)),
    ("pickle", "loads", (b"x",)),
])
def test_forbidden_globals(tmp_path, module, name, args):
    marker = tmp_path / "pwned"
    args = tuple(a.format(m=marker) if isinstance(a, str) else a for a in args)
    try:
        data = global_call(module, name, *args)
    except (pickle.PicklingError, TypeError):
        data = global_call(module, name, str(marker))
    msg = assert_refused(tmp_path, data, f"{module}.{name}", marker)
    assert "unsafe pickle" in msg


def test_hostile_global_inside_a_tensor_blob(tmp_path):
    marker = tmp_path / "pwned"
    header = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    blob = header + global_call("os", "system", f"touch {marker}")
    outer = b"\x80\x02ctorch.storage\n_load_from_bytes\n" + b"B" + len(blob).to_bytes(4, "little") + blob + b"\x85R."
    assert_refused(tmp_path, outer, "os.system", marker)
    with pytest.raises(UnsafePickleError):
        load_storage_bytes(blob)


def test_object_arrays_are_refused():
    data = pickle.dumps(np.array([1, "a"], dtype=object), protocol=4)
    with pytest.raises(UnsafePickleError):
        safe_load(io.BytesIO(data))


def test_persistence_module_source_is_never_executed(tmp_path, monkeypatch):
    """Re-pickle a real snapshot with executable module source; loading it runs none of it."""
    marker = tmp_path / "pwned"
    snapshot = safe_load(open(reference_path("sg2ada_skip.pkl"), "rb"))
    evil_src = f"open({str(marker)!r}, 'w').close()\n"
    path = tmp_path / "snap.pkl"
    path.write_bytes(repickle(snapshot, monkeypatch, module_src=evil_src))
    nets = stylegan.load(path)
    assert not marker.exists()
    npz = load_npz("sg2ada_skip")
    z = torch.from_numpy(npz["z"][:1])
    img = nets["G_ema"](z, None, truncation_psi=0.7, noise_mode="const")
    np.testing.assert_allclose(img.detach().numpy(), npz["img_psi0.7_const"][:1], atol=IMG_ATOL, rtol=0)


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_older_writers_protocols_and_numpy_names(tmp_path, monkeypatch, protocol):
    """Files from older software: protocol 3 (GLOBAL, BINPUT), OrderedDict containers, numpy.core names."""
    snapshot = safe_load(open(reference_path("sg3_t.pkl"), "rb"))
    data = repickle(snapshot, monkeypatch, protocol=protocol, ordered=True)
    if protocol <= 3:
        assert b"cnumpy.core.multiarray\n" in data or b"numpy.core.multiarray" in data
    path = tmp_path / "old.pkl"
    path.write_bytes(data)
    nets = stylegan.load(path)
    npz = load_npz("sg3_t")
    with torch.no_grad():
        img = nets["G_ema"](torch.from_numpy(npz["z"][:1]), None, truncation_psi=0.7)
    np.testing.assert_allclose(img.numpy(), npz["img_psi0.7_const"][:1], atol=IMG_ATOL, rtol=0)


def repickle(snapshot, monkeypatch, module_src: str = "", protocol: int = 4, ordered: bool = False) -> bytes:
    """Write a snapshot tree back as NVIDIA's training loop would, through stand-in modules."""
    import collections

    def reconstruct(meta):  # never called: only its name is written
        raise AssertionError

    fake = types.ModuleType("torch_utils.persistence")
    fake._reconstruct_persistent_obj = reconstruct
    reconstruct.__module__, reconstruct.__qualname__ = fake.__name__, "_reconstruct_persistent_obj"
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    dnnlib = types.ModuleType("dnnlib.util")
    EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    dnnlib.EasyDict = EasyDict
    monkeypatch.setitem(sys.modules, "dnnlib", types.ModuleType("dnnlib"))
    monkeypatch.setitem(sys.modules, "dnnlib.util", dnnlib)

    class Writer(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, PersistentObject):
                state = dict(obj.state)
                if ordered:
                    for k in ("_parameters", "_buffers", "_modules"):
                        state[k] = collections.OrderedDict(state[k])
                meta = dict(type="class", version=6, module_src=module_src or obj.module_src,
                            class_name=obj.class_name, state=state)
                return reconstruct, (meta,)
            if type(obj).__name__ == "EasyDict" and type(obj) is not EasyDict:
                return EasyDict, (), None, None, iter(obj.items())
            return NotImplemented

    buf = io.BytesIO()
    Writer(buf, protocol=protocol).dump(snapshot)
    data = buf.getvalue()
    if protocol <= 3:
        # numpy 1.x wrote its helpers under numpy.core; real old files carry those names.
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return data


# --- TorchScript: code too -----------------------------------------------------------------------

def files_under(folder) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_torchscript_that_writes_a_file_runs_nowhere(tmp_path):
    """A TorchScript forward that overwrites a file (torch.from_file(shared=True)) given to every
    reader that could meet a .pt: each refuses it in one line, and nothing on disk changes."""
    from click.testing import CliRunner
    from PIL import Image
    from scripts.cli import main
    from stylegan.editing import load_direction
    from stylegan.inversion import load_feature_net
    from stylegan.io import load_latents
    from conftest import WritingModule
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"safe")
    evil = tmp_path / "loss.pt"
    torch.jit.script(WritingModule(str(victim))).save(str(evil))
    Image.fromarray(np.zeros([32, 32, 3], np.uint8)).save(tmp_path / "t.png")
    before = files_under(tmp_path)
    readers = {"network": lambda: stylegan.load(evil), "feature net": lambda: load_feature_net(evil),
               "direction": lambda: load_direction(evil), "latents": lambda: load_latents(evil)}
    for what, read in readers.items():
        with pytest.raises(ValueError) as e:
            read()
        assert "\n" not in str(e.value) and str(evil) in str(e.value), what
    net = reference_path("sg2ada_skip.pkl")
    for args in (["project", "--network", net, "--target", tmp_path / "t.png", "--loss", evil, "--steps", "2",
                  "--no-identity", "--outdir", tmp_path / "proj"],
                 ["edit", "--network", net, "--seeds", "0", "--edit", f"{evil}:1", "--outdir", tmp_path / "edits"],
                 ["convert", evil, tmp_path / "out.stylegan"], ["info", evil]):
        r = CliRunner().invoke(main, [str(a) for a in args])
        lines = r.output.strip().splitlines()
        assert r.exit_code != 0 and len(lines) == 1 and "Traceback" not in r.output, (args[0], r.output)
    r = CliRunner().invoke(main, ["project", "--network", str(net), "--target", str(tmp_path / "t.png"),
                                  "--loss", str(evil), "--outdir", str(tmp_path / "proj")])
    assert "--trust-code" in r.output, r.output
    assert files_under(tmp_path) == before and victim.read_bytes() == b"safe"
