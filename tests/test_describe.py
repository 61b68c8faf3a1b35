"""Networks describe themselves: what `stylegan info` prints, and the kernels their forward pass runs,
checked against the kernels a forward pass actually asks for."""
from __future__ import annotations

import sys

import pytest
import torch
from click.testing import CliRunner

import ops
from scripts.cli import main

from conftest import NVIDIA_FIXTURES, fixture_model, reference_path


@pytest.fixture
def kernels_asked(monkeypatch):
    """Records the CUDA kernels each op's dispatch asks for, and the CPU kernels it would load (and
    then refuses them, so the reference-equal fast paths run and nothing is compiled)."""
    cuda, cpu = set(), set()
    for name, module in list(sys.modules.items()):
        if name.startswith("ops.") and hasattr(module, "choose_impl"):
            def spy(impl, x, *kernels, _choose=module.choose_impl):
                cuda.update(kernels)
                return _choose(impl, x, *kernels)
            monkeypatch.setattr(module, "choose_impl", spy)
    monkeypatch.setenv("STYLEGAN_CPU_KERNELS", "1")
    monkeypatch.setattr(ops._cpu, "load", lambda name: cpu.add(name))
    return cuda, cpu


@pytest.mark.parametrize("name", NVIDIA_FIXTURES + ["tf_sg2"])
def test_described_kernels_are_the_ones_a_forward_pass_runs(name, kernels_asked):
    cuda, cpu = kernels_asked
    for key, net in fixture_model(name).items():
        cuda.clear()
        cpu.clear()
        with torch.no_grad():
            if key == "D":
                net(torch.zeros(4, 3, 32, 32), torch.zeros(4, net.c_dim))
            else:
                net(torch.randn(1, net.z_dim), torch.eye(net.c_dim)[:1] if net.c_dim else None)
        d = net.describe()
        assert (set(d.cuda_kernels), set(d.cpu_kernels)) == (cuda, cpu), (name, key)
        assert set(d.cuda_kernels) <= set(ops.CUDA_OPS) and set(d.cpu_kernels) <= set(ops.CPU_OPS)
        assert d.kind == ("discriminator" if key == "D" else "generator")
        assert d.parameters == sum(p.numel() for p in net.parameters())


def test_info_prints_the_descriptions():
    r = CliRunner().invoke(main, ["info", str(reference_path("sg3_t.pkl"))])
    assert r.exit_code == 0, r.output
    for key, net in fixture_model("sg3_t").items():
        first, *rest = net.describe().lines()
        assert f"  {key:<6} {first}" in r.output.splitlines()
        assert all(f"         {line}" in r.output.splitlines() for line in rest)
    assert "kernels: CUDA bias_act, filtered_lrelu; CPU filtered_lrelu" in r.output


def test_an_architecture_name_is_a_random_network_on_the_command_line():
    r = CliRunner().invoke(main, ["info", "stylegan2-256"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "stylegan2-256: an architecture with random weights (untrained)"
    assert "StyleGAN2 generator (skip), 256x256x3, z_dim 512" in r.stdout
    assert r.stderr.strip().splitlines() == ["stylegan2-256: an architecture with random weights, for trying the "
                                             "tools out: its faces will be noise (`stylegan models` lists trained "
                                             "networks)"]
