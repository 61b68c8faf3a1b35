"""Bad model files fail with one line; no file makes the loader allocate much more than it holds.

Hostile files are built here from the reference fixtures and from hand-written pickles; each case
checks the reason the loader gives, so a loader that fails for another reason (e.g. running out of
memory after trying) does not pass."""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import sys
import types
import warnings
import zipfile

import numpy as np
import pytest
import torch

import stylegan
from stylegan import LoadError
from stylegan.loaders import LoadedModel, native
from stylegan.loaders.kwargs import ADA_DEFAULTS, GENERATOR_ARGS, canonical_kwargs
from stylegan.loaders.safe_pickle import EasyDict, PersistentObject, safe_load

from conftest import IMG_ATOL, init_kwargs, load_npz, prefixed, reference_path, within


def load_error(source, match: str) -> str:
    with pytest.raises(LoadError, match=match) as e:
        stylegan.load(source)
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# --- writing hostile pickles ----------------------------------------------------------------------

class Call:
    """Pickles as a call of `fn(*args)`, whatever the arguments (REDUCE)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args


class Writer(pickle.Pickler):
    def __init__(self, f, persistent, easydict, **kw):
        super().__init__(f, protocol=4, **kw)
        self.persistent, self.easydict = persistent, easydict

    def reducer_override(self, obj):
        if isinstance(obj, Call):
            return obj.fn, obj.args
        if isinstance(obj, EasyDict):
            return self.easydict, (), None, None, iter(obj.items())
        if isinstance(obj, PersistentObject):
            meta = dict(type="class", version=6, module_src="", class_name=obj.class_name, state=obj.state)
            return self.persistent, (meta,)
        return NotImplemented


@pytest.fixture
def dumps(monkeypatch):
    """obj -> pickle bytes naming NVIDIA's persistence function, as real snapshots do."""
    fake = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # only its name is written
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = fake.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = type("EasyDict", (dict,), {"__module__": util.__name__})
    for name, module in (("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.tflib", types.ModuleType("dnnlib.tflib")),
                         ("dnnlib.util", util)):
        monkeypatch.setitem(sys.modules, name, module)

    def write(obj) -> bytes:
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # TypedStorage deprecation
            Writer(buf, _reconstruct_persistent_obj, util.EasyDict).dump(obj)
        return buf.getvalue()
    return write


def storage(values) -> torch.storage.TypedStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.tensor(values, dtype=torch.float32).storage()


def write(tmp_path, data: bytes, name: str = "net.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- memory amplification --------------------------------------------------------------------------

def test_zero_stride_tensor_of_160_gb_is_refused(tmp_path, dumps):
    """The issue's file: one stored float viewed as a 200000 x 200000 tensor through zero strides."""
    huge = Call(torch._utils._rebuild_tensor_v2, storage([1.0]), 0, (200000, 200000), (0, 0), False,
                collections.OrderedDict())
    data = dumps({"G_ema": huge})
    assert len(data) < 600
    load_error(write(tmp_path, data), r"shape \[200000, 200000\] reaches past its storage of 1 elements")


@pytest.mark.parametrize("offset, size, stride", [(0, (2,), (1,)), (1, (1,), (1,)), (0, (3, 3), (1, 0))])
def test_tensor_beyond_its_storage_is_refused(tmp_path, dumps, offset, size, stride):
    t = Call(torch._utils._rebuild_tensor_v2, storage([1.0, 2.0]), offset, size, stride, False,
             collections.OrderedDict())
    if size == (2,) or size == (1,):
        t.args = (storage([1.0]),) + t.args[1:]
    load_error(write(tmp_path, dumps({"G_ema": t})), "reaches past its storage")


def test_storage_declared_longer_than_its_bytes(tmp_path, dumps):
    from torch.storage import _load_from_bytes
    blob = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(storage([1.0, 2.0, 3.0, 4.0]), blob, _use_new_zipfile_serialization=False)
    short = blob.getvalue()[:-4]                # the count says 4 floats, 3 follow
    load_error(write(tmp_path, dumps({"G_ema": Call(_load_from_bytes, short)})), "tensor storage is truncated")


@pytest.mark.parametrize("opcode", [b"\x8e", b"\x96", b"\x8d"])  # BINBYTES8, BYTEARRAY8, BINUNICODE8
def test_declared_length_past_the_end(tmp_path, opcode):
    """The C unpickler allocates a declared length before reading: 1 TB must be refused unread."""
    data = b"\x80\x05" + opcode + struct.pack("<Q", 1 << 40) + b"abc."
    msg = load_error(write(tmp_path, data), "truncated or corrupt pickle")
    assert "MemoryError" not in msg


def test_one_storage_blob_rebuilt_many_times(tmp_path, dumps):
    """A pickle can reference one 1 MB blob hundreds of times; each reference would be a new storage."""
    from torch.storage import _load_from_bytes
    blob = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(storage(np.zeros(1 << 18).tolist()), blob, _use_new_zipfile_serialization=False)
    blob = blob.getvalue()
    path = write(tmp_path, dumps({"G_ema": [Call(_load_from_bytes, blob) for _ in range(300)]}))
    assert path.stat().st_size < 2 * len(blob)
    load_error(path, r"far more than a 1\.\d MB file holds")


def test_numpy_arrays_of_declared_shape(tmp_path, dumps):
    from numpy._core.multiarray import _reconstruct
    load_error(write(tmp_path, dumps({"G_ema": Call(_reconstruct, np.ndarray, (10 ** 6, 10 ** 6), b"b")})),
               "a numpy array would take the loader past")
    load_error(write(tmp_path, dumps({"G_ema": Call(np.ndarray, (10 ** 12,))})), "direct call of numpy.ndarray")


def test_container_rebuilt_from_one_shared_list(tmp_path, dumps):
    items = list(range(100_000))
    load_error(write(tmp_path, dumps({"meta": [Call(set, items) for _ in range(200)]})), "a set would take")


def test_tf_variables_must_be_arrays(tmp_path, monkeypatch, dumps):
    """A TF variable given as a list could be one list shared many times over; arrays only."""
    module = types.ModuleType("dnnlib.tflib.network")

    class Network:
        pass
    Network.__module__, Network.__qualname__ = module.__name__, "Network"
    module.Network = Network
    monkeypatch.setitem(sys.modules, module.__name__, module)
    nets = []
    for _ in range(3):
        n = Network()
        n.__dict__.update(version=4, name="G", static_kwargs={}, components={}, variables=[("x", [0.0] * 10)])
        nets.append(n)
    load_error(write(tmp_path, dumps(tuple(nets))), r"is not a \(name, array\) pair")


def _torch_zip(tmp_path, numel: int, size, stride, record: bytes, compress=zipfile.ZIP_STORED):
    """A torch.save zip whose data.pkl declares one storage of `numel` floats, stored as `record`."""
    base = tmp_path / "base.pt"
    torch.save({"g_ema": {"x": torch.zeros(1)}}, base)

    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj == "STORAGE" else None

        def reducer_override(self, obj):
            return (obj.fn, obj.args) if isinstance(obj, Call) else NotImplemented
    buf = io.BytesIO()
    P(buf, protocol=2).dump({"g_ema": {"x": Call(torch._utils._rebuild_tensor_v2, "STORAGE", 0, size, stride,
                                                 False, collections.OrderedDict())}})
    path = tmp_path / "bad.pt"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            if item.filename.endswith("data.pkl"):
                zout.writestr(item, buf.getvalue())
            elif item.filename.endswith("data/0"):
                zout.writestr(item.filename, record, compress_type=compress)
            else:
                zout.writestr(item, zin.read(item))
    return path


def test_rosinality_zip_zero_stride_tensor(tmp_path):
    """torch.load checks that a view fits its record, but a zero stride fits any shape."""
    path = _torch_zip(tmp_path, 1, (200000, 200000), (0, 0), b"\0" * 4)
    load_error(path, r"shape \[200000, 200000\] reaches past its storage of 1 elements")


def test_rosinality_zip_compressed_record(tmp_path):
    """A deflated record of 100 MB of zeros packs into ~100 KB; torch.load would unpack it whole."""
    n = 25_000_000
    path = _torch_zip(tmp_path, n, (n,), (1,), bytes(4 * n), compress=zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 1 << 20
    load_error(path, "unpacked records would take the loader past")


def _generator_pickle(dumps, kwargs: dict, **extra) -> bytes:
    """A snapshot whose G_ema is a StyleGAN2 generator with `kwargs` and no tensors."""
    b4 = PersistentObject("SynthesisBlock", {"_parameters": {}, "_buffers": {}, "_modules": {}})
    synthesis = PersistentObject("SynthesisNetwork", {"_parameters": {}, "_buffers": {}, "_modules": {"b4": b4}})
    G = PersistentObject("Generator", {"_init_kwargs": kwargs, "_init_args": (), "_parameters": {}, "_buffers": {},
                                       "_modules": {"synthesis": synthesis}})
    return dumps({"G_ema": G, **extra})


def test_network_far_wider_than_the_file(tmp_path, dumps):
    """A few hundred bytes of settings asking for a 9 GB mapping network: refused before allocating."""
    kwargs = dict(z_dim=1 << 14, c_dim=0, w_dim=1 << 14, img_resolution=8, img_channels=3,
                  mapping_kwargs={"num_layers": 8}, synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    load_error(write(tmp_path, _generator_pickle(dumps, kwargs)), "building the network would take the loader past")


@pytest.mark.parametrize("setting", [{"mapping_kwargs": {"num_layers": 10 ** 6}}, {"img_resolution": 1 << 30},
                                     {"synthesis_kwargs": {"resample_filter": [1] * 1000}}])
def test_implausible_settings(tmp_path, dumps, setting):
    kwargs = {**dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3), **setting}
    load_error(write(tmp_path, _generator_pickle(dumps, kwargs)), "implausible setting")


def test_module_listed_twice(tmp_path, dumps):
    """A module tree that shares a submodule would walk its tensors once per path."""
    leaf = PersistentObject("Leaf", {"_parameters": {"w": torch.zeros(2)}, "_buffers": {}, "_modules": {}})
    b4 = PersistentObject("SynthesisBlock", {"_parameters": {}, "_buffers": {}, "_modules": {"a": leaf, "b": leaf}})
    synthesis = PersistentObject("SynthesisNetwork", {"_parameters": {}, "_buffers": {}, "_modules": {"b4": b4}})
    G = PersistentObject("Generator", {"_init_kwargs": {}, "_parameters": {}, "_buffers": {},
                                       "_modules": {"synthesis": synthesis}})
    load_error(write(tmp_path, dumps({"G_ema": G})), "appears more than once")


def test_shared_metadata_is_not_expanded(tmp_path, dumps):
    """Metadata of nested shared lists stands for 2**40 values: the snapshot loads without it."""
    snapshot = safe_load(open(reference_path("sg2ada_skip.pkl"), "rb"))
    deep = [0]
    for _ in range(40):
        deep = [deep, deep]
    snapshot["training_set_kwargs"]["path"] = deep
    nets = stylegan.load(write(tmp_path, dumps(snapshot)))
    assert "training_set_kwargs" not in nets.metadata and "augment_pipe_kwargs" in nets.metadata


# --- files that are not models, or are damaged --------------------------------------------------------

@pytest.mark.parametrize("fixture, what", [("sg3_t.npz", "a numpy .npz archive"),
                                           ("lpips_standin.pt", "a TorchScript module"),
                                           ("shapes.json", "a JSON file"), ("README.md", "a text file")])
def test_other_files_are_named(fixture, what):
    msg = load_error(reference_path(fixture), what)
    assert "not a model file" in msg and "expected" in msg and "RuntimeError" not in msg


@pytest.mark.parametrize("content, what", [
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "a PNG image"), (b"\xff\xd8\xff\xe0" + bytes(64), "a JPEG image"),
    (b"\x93NUMPY\x01\x00" + bytes(64), "a numpy .npy array"), (b"\x1f\x8b\x08" + bytes(64), "a gzip file"),
])
def test_file_kinds_by_content(tmp_path, content, what):
    load_error(write(tmp_path, content, "net.pkl"), what)


def test_zip_of_other_files(tmp_path):
    path = tmp_path / "net.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("a.txt", "x")
        z.writestr("b.txt", "y")
    load_error(path, "a zip archive of 2 files, not a model file")


def test_pickles_without_networks(tmp_path, dumps):
    load_error(write(tmp_path, pickle.dumps([1, 2, 3], protocol=4)), "top level is a list")
    msg = load_error(write(tmp_path, pickle.dumps({"step": 10, "lr": 0.1}, protocol=4)), "no G, D or G_ema network")
    assert "keys: lr, step" in msg


def test_rosinality_generator_lacking_tensors(tmp_path):
    ckpt = torch.load(reference_path("rosinality.pt"), weights_only=True)
    del ckpt["g_ema"]["style.1.weight"], ckpt["g_ema"]["noises.noise_3"]
    path = tmp_path / "partial.pt"
    torch.save(ckpt, path)
    msg = load_error(path, "'g_ema' is not a complete rosinality generator: it lacks style.1.weight")
    assert "noises.noise_3" in msg and "KeyError" not in msg


def test_rosinality_checkpoint_without_generator(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(2)}}, path)
    load_error(path, "not a rosinality StyleGAN2 one .*has model")


def test_nvidia_tensors_that_do_not_fit(tmp_path, dumps):
    snapshot = safe_load(open(reference_path("sg2ada_skip.pkl"), "rb"))
    params = snapshot["G_ema"].state["_modules"]["synthesis"].state["_modules"]["b4"].state["_parameters"]
    params["const"] = torch.zeros(3, 4, 4)
    load_error(write(tmp_path, dumps(snapshot)), r"has synthesis.b4.const of shape \[3, 4, 4\] where \[64, 4, 4\]")


# --- the toolkit's own format ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def native_bytes(tmp_path_factory) -> bytes:
    nets = stylegan.load(reference_path("sg2ada_skip.pkl"))
    return stylegan.save(nets, tmp_path_factory.mktemp("native") / "m.stylegan").read_bytes()


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.999])
def test_truncated_native_file(tmp_path, native_bytes, fraction):
    path = write(tmp_path, native_bytes[:int(len(native_bytes) * fraction)], "m.stylegan")
    msg = load_error(path, "truncated or corrupt stylegan file")
    assert "SafetensorError" not in msg


def test_native_file_cut_inside_its_header(tmp_path, native_bytes):
    load_error(write(tmp_path, native_bytes[:200], "m.stylegan"), "header runs past the end")


def _rewrite_header(data: bytes, change) -> bytes:
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    change(header["__metadata__"])
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + n:]


@pytest.mark.parametrize("change, match", [
    (lambda m: m.update(networks="{not json"), "corrupt stylegan file header .networks"),
    (lambda m: m.pop("networks"), "no 'networks' entry"),
    (lambda m: m.update(version="seven"), "corrupt stylegan file header .version"),
    (lambda m: m.update(version="99"), "written by a newer version of stylegan .stylegan file format 99"),
    (lambda m: m.update(format="other"), "not a stylegan file .its format is .other"),
    (lambda m: m.update(networks=json.dumps({"G_ema": {"kwargs": {}}})), "network entry 'G_ema'"),
])
def test_native_header_problems(tmp_path, native_bytes, change, match):
    load_error(write(tmp_path, _rewrite_header(native_bytes, change), "m.stylegan"), match)


def test_native_header_that_is_not_json(tmp_path, native_bytes):
    n = int.from_bytes(native_bytes[:8], "little")
    data = native_bytes[:8] + b"{" + b"x" * (n - 1) + native_bytes[8 + n:]
    load_error(write(tmp_path, data, "m.stylegan"), "truncated or corrupt stylegan file")


# --- sources: paths, names, URLs --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["", "   "])
def test_no_model_given(source):
    assert load_error(source, "no model given") == "no model given (an empty path or name)"


def test_folder(tmp_path):
    load_error(tmp_path, "is a folder")


def test_permission_denied(tmp_path, monkeypatch):
    path = write(tmp_path, reference_path("sg3_t.pkl").read_bytes())
    path.chmod(0)
    if os.name != "posix" or os.geteuid() == 0:     # permissions do not bind root: refuse the open instead
        def refuse(file, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(file))
        monkeypatch.setattr("stylegan.loaders.open", refuse, raising=False)
    assert load_error(path, "permission denied") == f"{path}: permission denied"


def test_unknown_name_names_itself_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    msg = load_error("ffhqq", "ffhqq")
    assert msg.startswith("ffhqq: ") and msg.count("ffhqq") == 1 and "ffhq" in msg.split(":", 1)[1]


def test_url_is_not_mangled(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    url = "http://127.0.0.1:9/x.pkl"
    msg = load_error(url, "refused")
    assert msg.startswith(url + ": ") and msg.count("127.0.0.1") == 1 and "http:/1" not in msg
    assert msg == f"{url}: connection refused"


# --- the typed result -----------------------------------------------------------------------------------

def test_loaded_model_indexes_networks_only():
    nets = stylegan.load(reference_path("sg3_t.pkl"))
    assert isinstance(nets, LoadedModel) and nets.format == "nvidia-pickle"
    assert nets.keys() == ["G", "D", "G_ema"] and list(nets) == nets.keys() and len(nets) == 3
    assert nets["G_ema"] is nets.G_ema is nets.generator and "G_ema" in nets and "format" not in nets
    assert nets.metadata["training_set_kwargs"]["resolution"] == 32
    for key in ("format", "training_set_kwargs"):
        with pytest.raises(KeyError, match="networks only"):
            nets[key]
    only_d = LoadedModel(D=nets.D, source="d.pkl")
    with pytest.raises(ValueError, match="d.pkl: holds no generator"):
        only_d.generator
    with pytest.raises(KeyError, match="holds no G_ema"):
        only_d["G_ema"]


def test_trainable_networks():
    frozen = stylegan.load(reference_path("sg2ada_skip.pkl"))
    nets = stylegan.load(reference_path("sg2ada_skip.pkl"), trainable=True)
    for key in ("G", "D", "G_ema"):
        assert nets[key].training and all(p.requires_grad for p in nets[key].parameters())
        assert not frozen[key].training and not any(p.requires_grad for p in frozen[key].parameters())
    G = nets.generator
    z = torch.from_numpy(load_npz("sg2ada_skip")["z"][:1])
    G(z, None, noise_mode="const").square().mean().backward()
    assert G.mapping.fc0.weight.grad is not None and G.synthesis.b4.const.grad.abs().sum() > 0


def test_save_takes_the_result_or_a_dict(tmp_path):
    nets = stylegan.load(reference_path("sg3_r.pkl"))
    again = stylegan.load(stylegan.save(nets, tmp_path / "a.stylegan"))
    assert again.keys() == nets.keys() and again.metadata == nets.metadata
    d = stylegan.load(stylegan.save({"G_ema": nets.G_ema, "note": "x"}, tmp_path / "b.stylegan"))
    assert d.keys() == ["G_ema"] and d.metadata == {"note": "x"}
    with pytest.raises(ValueError, match="unknown network key"):
        stylegan.save({"Gs": nets.G_ema}, tmp_path / "c.stylegan")


def test_save_leaves_no_temporary_behind(tmp_path, monkeypatch):
    """native.save writes through the shared atomic helper: its temp names are the ones the sweep knows."""
    import safetensors.torch
    from stylegan.io import files as io_files
    nets = stylegan.load(reference_path("sg3_t.pkl"))
    seen = []

    def failing(tensors, filename, metadata=None):
        seen.append(filename)
        open(filename, "wb").write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(safetensors.torch, "save_file", failing)
    with pytest.raises(OSError, match="disk full"):
        stylegan.save(nets, tmp_path / "m.stylegan")
    assert list(tmp_path.iterdir()) == [] and io_files._TEMP.match(os.path.basename(seen[0]))


# --- constructor kwargs ------------------------------------------------------------------------------------

def test_constructors_take_one_form():
    kw = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3)
    with pytest.raises(TypeError):
        stylegan.create_model("stylegan2", **kw, channel_base=64)
    G = stylegan.create_model("stylegan2", **kw, synthesis_kwargs=dict(channel_base=64, channel_max=8))
    assert G.synthesis.b8.conv1.conv_clamp == 256       # our defaults (stylegan3's), whatever the form
    import inspect
    from stylegan.networks.stylegan3 import Generator
    assert inspect.signature(Generator).parameters["mapping_kwargs"].default is None


@pytest.mark.parametrize("name", ["sg2ada_skip", "sg3_sg2", "tf_sg2"])
def test_canonical_kwargs_of_each_form(name):
    raw = init_kwargs(load_npz(name))
    kw = canonical_kwargs("stylegan2", raw)
    assert set(kw) == {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs",
                       "synthesis_kwargs"}
    synthesis = raw.get("synthesis_kwargs") or {k: v for k, v in raw.items() if k not in kw}
    assert {k: kw["synthesis_kwargs"][k] for k in synthesis} == synthesis
    # stylegan2-ada-pytorch's defaults fill what its nested form leaves out; stylegan3's are ours.
    base = {k: raw[k] for k in GENERATOR_ARGS}
    assert canonical_kwargs("stylegan2", {**base, "synthesis_kwargs": {}})["synthesis_kwargs"] == ADA_DEFAULTS
    assert canonical_kwargs("stylegan2", base)["synthesis_kwargs"] == {}
    assert canonical_kwargs("stylegan2_discriminator", {"c_dim": 0}, ada=True)["conv_clamp"] is None


@pytest.mark.parametrize("name", ["sg2ada_skip", "sg3_sg2"])
def test_version_1_native_files_still_load(tmp_path, name):
    """Files saved before the kwargs were normalised recorded NVIDIA's form, flat or nested."""
    from safetensors.torch import save_file
    npz = load_npz(name)
    raw = init_kwargs(npz)
    if "synthesis_kwargs" in raw:
        del raw["synthesis_kwargs"]["conv_clamp"]     # the nested form then means no clamp
    tensors = {f"G_ema.{k}": v.contiguous() for k, v in prefixed(npz, "G").items()}
    path = tmp_path / "v1.stylegan"
    save_file(tensors, path, metadata={"format": "stylegan", "version": "1", "metadata": "{}",
                                       "networks": json.dumps({"G_ema": {"arch": "stylegan2", "kwargs": raw}})})
    G = stylegan.load(path).generator
    assert G.synthesis.b8.conv1.conv_clamp == (None if name == "sg2ada_skip" else 256)
    z = torch.from_numpy(npz["z"])
    with torch.no_grad():
        img = torch.cat([G(z[i:i + 1], None, truncation_psi=0.7, noise_mode="const") for i in range(4)])
    np.testing.assert_allclose(img.numpy(), npz["img_psi0.7_const"], atol=IMG_ATOL, rtol=0)
    # Saved again, the file holds our form and reads back the same network.
    again = stylegan.load(stylegan.save(stylegan.load(path), tmp_path / "v2.stylegan")).generator
    assert "channel_base" in again.init_kwargs["synthesis_kwargs"]
    assert again.synthesis.b8.conv1.conv_clamp == G.synthesis.b8.conv1.conv_clamp
    assert native.VERSION == 2


# --- code where data should be, and files that are no files ------------------------------------------

def test_torchscript_is_no_model_and_never_runs(tmp_path):
    from conftest import WritingModule
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"safe")
    torch.jit.script(WritingModule(str(victim))).save(str(tmp_path / "net.pt"))
    load_error(tmp_path / "net.pt", "a TorchScript module, not a model file")
    assert victim.read_bytes() == b"safe"


class _Print:
    def __reduce__(self):
        return print, ("ran",)


def test_refused_checkpoint_names_the_global_and_gives_no_advice_to_disarm(tmp_path):
    # Torch's own refusal text tells the reader to re-run with weights_only=False: never repeated.
    torch.save({"g_ema": _Print()}, tmp_path / "ckpt.pt")
    msg = load_error(tmp_path / "ckpt.pt", "refusing global print")
    assert "weights_only" not in msg and "False" not in msg
    from stylegan.editing import load_direction
    with pytest.raises(ValueError) as e:
        load_direction(tmp_path / "ckpt.pt")
    assert "refusing global print" in str(e.value) and "weights_only" not in str(e.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_and_device_are_refused_without_blocking(tmp_path):
    from stylegan.editing import load_direction
    from stylegan.faces import read_photo
    from stylegan.inversion import load_feature_net
    from stylegan.io import load_latents
    fifo = tmp_path / "net.pkl"
    os.mkfifo(fifo)
    msg = within(20, lambda: load_error(fifo, "FIFO"))
    assert msg.count(str(fifo)) == 1
    for read in (read_photo, load_latents, load_direction, load_feature_net):
        for path, words in ((fifo, "FIFO"), ("/dev/zero", "character device")):
            with pytest.raises(ValueError, match=words) as e:
                within(20, lambda: read(path))
            assert "\n" not in str(e.value)
