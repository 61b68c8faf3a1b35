"""TorchScript archives read as data: the same tensors, names and order as torch's own loader gives,
and nothing in the file runs."""
from __future__ import annotations

import io
import zipfile

import pytest
import torch

from stylegan.loaders.torchscript import is_torchscript, read_torchscript

from conftest import WritingModule, reference_path


class Sub(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.register_buffer("avg", torch.randn(4))
        self.lin = torch.nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.lin(self.conv(x).mean([2, 3]) + self.avg)


class Top(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("b0", torch.randn(2))
        self.a = Sub()
        self.p = torch.nn.Parameter(torch.randn(3))
        self.seq = torch.nn.Sequential(Sub(), torch.nn.ReLU())
        self.hh = torch.nn.Parameter(torch.randn(5).half())

    def forward(self, x):
        return self.a(x) + self.seq[0](x) + self.b0


@pytest.mark.parametrize("how", ["script", "trace"])
def test_same_tensors_as_torch(tmp_path, how):
    torch.manual_seed(0)
    net = Top()
    mod = torch.jit.script(net) if how == "script" else torch.jit.trace(net, torch.randn(1, 3, 8, 8))
    mod.save(str(tmp_path / "m.pt"))
    got = read_torchscript(tmp_path / "m.pt")
    want = torch.jit.load(str(tmp_path / "m.pt"))      # a file this test wrote itself
    assert list(got.tensors) == list(want.state_dict())
    for k, v in want.state_dict().items():
        assert got.tensors[k].dtype == v.dtype and torch.equal(got.tensors[k], v), k
    assert got.parameters == {n for n, _ in want.named_parameters()}
    assert got.root_class.endswith("Top")


@pytest.mark.parametrize("name", ["lpips_standin.pt", "metrics/inception_standin.pt", "metrics/vgg16_standin.pt"])
def test_reference_standins(name):
    path = reference_path(name)
    got = read_torchscript(path)
    want = torch.jit.load(str(path)).state_dict()
    assert list(got.tensors) == list(want) and all(torch.equal(got.tensors[k], want[k]) for k in want)


def test_reading_runs_nothing(tmp_path):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"safe")
    mod = torch.jit.script(WritingModule(str(victim)))
    mod.save(str(tmp_path / "w.pt"))
    assert victim.read_bytes() == b"safe"
    got = read_torchscript(tmp_path / "w.pt")
    assert victim.read_bytes() == b"safe" and torch.equal(got.tensors["w"], torch.ones(3))
    assert "from_file" in "".join(got.code.values())     # the code is there, as text
    torch.jit.load(str(tmp_path / "w.pt"))(torch.ones(3))   # what running it does (this test's own file)
    assert victim.read_bytes() == b"XXXX"


def _rewrite(path, out, member_suffix, edit):
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(out, "w") as w:
        for info in z.infolist():
            data = z.read(info)
            w.writestr(info, edit(data) if info.filename.endswith(member_suffix) else data)
    return out


def test_hostile_archives_refused(tmp_path):
    torch.jit.script(Top()).save(str(tmp_path / "m.pt"))
    evil = _rewrite(tmp_path / "m.pt", tmp_path / "evil.pt", "data.pkl",
                    lambda d: d.replace(b"ctorch._utils\n_rebuild_tensor_v2\n", b"cbuiltins\neval\n", 1))
    with pytest.raises(ValueError, match="refusing global") as e:
        read_torchscript(evil)
    assert "\n" not in str(e.value)
    short = _rewrite(tmp_path / "m.pt", tmp_path / "short.pt", "data/0", lambda d: d[:4])
    with pytest.raises(ValueError, match="shorter than"):
        read_torchscript(short)
    with pytest.raises(ValueError, match="not a TorchScript"):
        buf = io.BytesIO()
        torch.save({"w": torch.ones(2)}, buf)
        (tmp_path / "sd.pt").write_bytes(buf.getvalue())
        read_torchscript(tmp_path / "sd.pt")
    assert is_torchscript(tmp_path / "m.pt") and not is_torchscript(tmp_path / "sd.pt")
