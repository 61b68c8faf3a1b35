"""The tagged-safetensors layer (stylegan/io/tagged.py) and the three formats on it: models, latents,
directions. Files written before the layer existed (made here with the raw safetensors API, as the
old writers did) still read; a file of another format or of a newer version is one line naming it."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import stylegan
from stylegan._errors import FileError
from stylegan.editing.directions import Direction, load_direction, save_direction
from stylegan.io import load_latents, save_latents
from stylegan.io.tagged import read_tagged, write_tagged
from stylegan.networks import create_model


def test_round_trip(tmp_path):
    a = torch.randn(3, 5)
    tensors = {"a": a.t(), "b": torch.arange(4, dtype=torch.int64), "c": torch.randn(2).double()}  # a.t(): strided
    path = write_tagged(tmp_path / "sub" / "x.safetensors", tensors, {"note": "héllo", "n": "3"},
                        format="demo", version=4)
    got = read_tagged(path, format="demo", version=4, what="demo file")
    assert got.version == 4
    assert got.tags == {"format": "demo", "version": "4", "note": "héllo", "n": "3"}
    assert sorted(got.tensors) == ["a", "b", "c"]
    for k, t in tensors.items():
        assert got.tensors[k].dtype == t.dtype and torch.equal(got.tensors[k], t)
    # An older version reads with a newer reader; the file is never replaced silently.
    assert read_tagged(path, format="demo", version=9, what="demo file").version == 4
    with pytest.raises(FileExistsError, match="overwrite"):
        write_tagged(path, tensors, {}, format="demo", version=4)
    write_tagged(path, {"a": a}, {}, format="demo", version=5, overwrite=True)
    assert read_tagged(path, format="demo", version=5, what="demo file").tags == {"format": "demo", "version": "5"}


def one_line(e: pytest.ExceptionInfo, path) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: "), msg
    return msg


@pytest.mark.parametrize("meta, match", [
    ({"format": "demo", "version": "5"}, r"written by a newer version of stylegan \(demo file format 5, this "
                                         r"version reads up to 4\): upgrade stylegan"),
    ({"format": "other", "version": "1"}, r"not a demo file \(its format is 'other'\)"),
    ({}, r"not a demo file \(it has no format tag\)"),
    ({"format": "demo", "version": "two"}, r"corrupt demo file header \(version 'two'\)"),
])
def test_refused_in_one_line(tmp_path, meta, match):
    path = tmp_path / "x.safetensors"
    save_file({"a": torch.zeros(1)}, path, metadata=meta or None)
    with pytest.raises(FileError, match=match) as e:
        read_tagged(path, format="demo", version=4, what="demo file")
    one_line(e, path)


def test_damaged_file_in_one_line(tmp_path):
    path = write_tagged(tmp_path / "x.safetensors", {"a": torch.zeros(100)}, {}, format="demo", version=1)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(FileError, match="truncated or corrupt demo file") as e:
        read_tagged(path, format="demo", version=1, what="demo file")
    one_line(e, path)


# --- the three formats ------------------------------------------------------------------------------

def tiny_generator():
    return create_model("stylegan2", z_dim=8, w_dim=8, c_dim=0, img_resolution=8, img_channels=3,
                        mapping_kwargs={"num_layers": 1},
                        synthesis_kwargs={"channel_base": 64, "channel_max": 8}).eval()


def model_file(path, G, version: str = "2", fmt: str = "stylegan"):
    """A model file the way native.save wrote it before the tagged layer."""
    tensors = {f"G_ema.{k}": v.detach().contiguous().clone() for k, v in G.state_dict().items()}
    save_file(tensors, path, metadata={"format": fmt, "version": version, "metadata": json.dumps({"note": 1}),
                                       "networks": json.dumps({"G_ema": {"arch": G.arch, "kwargs": G.init_kwargs}})})
    return path


def latent_file(path, ws, version: str = "1", fmt: str = "stylegan-latent"):
    """A latent file the way save_latents wrote it before the tagged layer."""
    save_file({"ws": ws}, path, metadata={
        "format": fmt, "version": version, "space": "w+", "network_digest": "ab" * 32, "psi": repr(0.7),
        "source": "seed 3", "metadata": json.dumps({"k": [1, 2]}), "style_layers": "[]"})
    return path


def direction_file(path, vectors, std, version: str = "1", fmt: str = "stylegan-direction"):
    """A direction file the way save_direction wrote it before the tagged layer."""
    save_file({"vectors": vectors, "std": std}, path, metadata={
        "format": fmt, "version": version, "space": "w", "method": "sefa", "layers": json.dumps([0, 1, 2]),
        "network_digest": "", "params": json.dumps({"k": 2})})
    return path


def test_files_written_before_the_layer_still_read(tmp_path):
    G = tiny_generator()
    back = stylegan.load(model_file(tmp_path / "m.stylegan", G)).generator
    assert back.init_kwargs == G.init_kwargs
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), G.state_dict().values()))

    ws = torch.randn(2, 4, 8)
    lat = load_latents(latent_file(tmp_path / "a.w.safetensors", ws))
    assert torch.equal(lat.ws, ws) and lat.space == "w+" and lat.psi == 0.7 and lat.source == "seed 3"
    assert lat.network_digest == "ab" * 32 and lat.metadata == {"k": [1, 2]}

    v = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    d = load_direction(direction_file(tmp_path / "d.direction", v, torch.ones(3)))
    assert torch.equal(d.vectors, v) and torch.equal(d.std, torch.ones(3))
    assert (d.space, d.method, d.layers, d.params) == ("w", "sefa", [0, 1, 2], {"k": 2})


def test_formats_write_what_they_read(tmp_path):
    """Written through the layer, each format reads back what it was given (and tags its version)."""
    G = tiny_generator()
    path = stylegan.save({"G_ema": G, "note": 1}, tmp_path / "m.stylegan")
    assert read_tagged(path, format="stylegan", version=2, what="stylegan file").version == 2
    nets = stylegan.load(path)
    assert nets.metadata == {"note": 1}
    assert all(torch.equal(a, b) for a, b in zip(nets.generator.state_dict().values(), G.state_dict().values()))
    ws = torch.randn(2, 4, 8)
    assert torch.equal(load_latents(save_latents(tmp_path / "a.w.safetensors", ws)).ws, ws)
    d = Direction(torch.nn.functional.normalize(torch.randn(2, 8), dim=1), layers=[1], params={"x": 1})
    back = load_direction(save_direction(d, tmp_path / "d.direction"))
    assert torch.equal(back.vectors, d.vectors) and back.layers == [1] and back.params == {"x": 1}


@pytest.mark.parametrize("fmt", ["model", "latent", "direction"])
@pytest.mark.parametrize("problem", ["newer", "other format"])
def test_formats_refuse_newer_and_foreign_files_in_one_line(tmp_path, fmt, problem):
    path = tmp_path / f"x.{fmt}"
    version, tag = ("99", None) if problem == "newer" else ("1", "stylegan-other")
    if fmt == "model":
        model_file(path, tiny_generator(), version, tag or "stylegan")
        read, what = stylegan.load, "stylegan file"
    elif fmt == "latent":
        latent_file(path, torch.randn(1, 4, 8), version, tag or "stylegan-latent")
        read, what = load_latents, "stylegan latent file"
    else:
        direction_file(path, torch.eye(2, 8), torch.ones(2), version, tag or "stylegan-direction")
        read, what = load_direction, "stylegan direction file"
    match = (f"newer version of stylegan \\({what} format 99" if problem == "newer"
             else f"not a {what} \\(its format is 'stylegan-other'\\)")
    with pytest.raises(ValueError, match=match) as e:
        read(path)
    one_line(e, path)
