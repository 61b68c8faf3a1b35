"""Full-size official checkpoints, from their name/shape lists: each converter consumes every tensor
and produces exactly the paper1024 network (names and shapes as NVIDIA's converter makes them)."""
from __future__ import annotations

import json

import numpy as np
import torch

from stylegan.loaders import build, rosinality, tf
from stylegan.loaders.safe_pickle import TFNetwork

from conftest import reference_path


def entry(key: str) -> dict:
    return json.loads(reference_path("shapes.json").read_text())[key]


def nvidia_shapes(key: str) -> list[tuple[str, tuple]]:
    return [(n, tuple(s)) for n, s, _ in entry(key)["tensors"]]


def shapes(module) -> list[tuple[str, tuple]]:
    return [(n, tuple(t.shape)) for n, t in module.state_dict().items()]


class Recording(dict):
    """A dict that remembers which keys were read."""

    def __init__(self, *a):
        super().__init__(*a)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def tf_network(name: str, key: str, components: dict | None = None) -> TFNetwork:
    net = TFNetwork()
    rng = np.random.RandomState(0)
    variables = [(n, np.asarray(rng.randn(*s), dtype=np.float32)) for n, s in entry(key)["tensors"]]
    net.__setstate__({"version": 4, "name": name, "static_kwargs": entry(key)["static_kwargs"],
                      "components": components or {}, "variables": variables})
    return net


def test_tf_config_f_converts_to_paper1024(monkeypatch):
    # The Gs list carries component prefixes ('mapping/...'); a single network holding them all
    # collects to the same flat names as the real component tree.
    Gs = tf_network("Gs", "stylegan2 TF config-f 1024 Gs variables")
    D = tf_network("D", "stylegan2 TF config-f 1024 D variables")
    read = []
    real_collect = tf.collect_params
    monkeypatch.setattr(tf, "collect_params", lambda net: read.append(Recording(real_collect(net))) or read[-1])
    specs = tf.convert((Gs, D, Gs))
    G = build(specs["G_ema"])
    assert shapes(G) == nvidia_shapes("stylegan2-ada-pytorch paper1024 G_ema")
    assert G.num_ws == 18
    D_ = build(specs["D"])
    assert shapes(D_) == nvidia_shapes("stylegan2-ada-pytorch paper1024 D")
    # Every TF variable but the unused `lod` feeds some tensor.
    g_params, d_params = read[2], read[1]
    assert set(g_params) - g_params.read == {"lod"}
    assert set(d_params) - d_params.read == set()


def test_rosinality_1024_converts_to_paper1024():
    e = entry("rosinality 1024 channel_multiplier=2 g_ema")
    gen = torch.Generator().manual_seed(0)
    g = {n: torch.randn(s, generator=gen) for n, s, _ in e["tensors"]}
    ckpt = {"g_ema": g, "latent_avg": torch.zeros(512)}
    spec = rosinality.convert(ckpt)["G_ema"]
    synthesis = spec.kwargs["synthesis_kwargs"]
    assert synthesis["channel_base"] == 32768 and synthesis["channel_max"] == 512
    G = build(spec)
    assert shapes(G) == nvidia_shapes("stylegan2-ada-pytorch paper1024 G_ema")
    assert G.num_ws == e["n_latent"]
    # Spot-check the renaming: a noise map and an upsampling conv's weight land where they belong.
    sd = G.state_dict()
    assert torch.equal(sd["synthesis.b64.conv1.noise_const"], g["noises.noise_8"][0, 0])
    assert torch.equal(sd["synthesis.b1024.conv0.weight"], g["convs.14.conv.weight"][0])
    assert torch.equal(sd["synthesis.b512.torgb.bias"], g["to_rgbs.6.bias"].reshape(-1))
