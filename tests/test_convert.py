"""`stylegan convert`: every input kind -> the toolkit's own format, exactly; bad inputs stop in one line."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import stylegan
from scripts.cli import main

from conftest import NVIDIA_FIXTURES, reference_path


def _convert(*args):
    return CliRunner().invoke(main, ["convert", *map(str, args)])


def _assert_same_model(a, b):
    """Same networks with equal state dicts (same order), same metadata, and equal images."""
    assert list(a.keys()) == list(b.keys()) and b.format == "stylegan"
    for key in a.keys():
        sa, sb = a[key].state_dict(), b[key].state_dict()
        assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa), key
        assert type(a[key]) is type(b[key]) and a[key].init_kwargs == b[key].init_kwargs
    assert a.metadata == b.metadata
    G, H = a.generator, b.generator
    z = torch.from_numpy(np.random.RandomState(0).randn(2, G.z_dim))
    c = torch.eye(G.c_dim)[:2] if G.c_dim else None
    with torch.no_grad():  # same machine, same code: bit for bit
        assert torch.equal(G(z, c, noise_mode="const"), H(z, c, noise_mode="const"))


@pytest.mark.parametrize("name", NVIDIA_FIXTURES + ["tf_sg2", "rosinality"])
def test_convert_every_format(tmp_path, name):
    src = reference_path(f"{name}.pt" if name == "rosinality" else f"{name}.pkl")
    out = tmp_path / "sub" / "m.stylegan"      # a missing folder is created
    r = _convert(src, out)
    assert r.exit_code == 0, r.output
    a = stylegan.load(src)
    _assert_same_model(a, stylegan.load(out))
    # Our own format in, our own format out: the same file content again.
    again = tmp_path / "again.stylegan"
    assert _convert(out, again).exit_code == 0
    _assert_same_model(a, stylegan.load(again))


class _Pickle(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_convert_from_url(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    src = reference_path("sg3_r.pkl")
    handler = type("H", (_Pickle,), {"body": src.read_bytes()})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        r = _convert(f"http://127.0.0.1:{srv.server_address[1]}/sg3_r.pkl", tmp_path / "m.stylegan")
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.exit_code == 0, r.output
    _assert_same_model(stylegan.load(src), stylegan.load(tmp_path / "m.stylegan"))


def test_convert_refuses_in_one_line_and_writes_nothing(tmp_path):
    src = reference_path("sg3_t.pkl")
    out = tmp_path / "m.stylegan"
    assert _convert(src, out).exit_code == 0
    first = out.read_bytes()
    (tmp_path / "afile").write_text("")
    npz = reference_path("sg3_t.npz")
    cases = [
        ([src, out], "exists: pass --overwrite"),
        ([out, out, "--overwrite"], "is the input file"),
        ([tmp_path / "nope.pkl", tmp_path / "x.stylegan"], "nope.pkl"),
        ([src, tmp_path / "afile" / "x.stylegan"], "is a file, not a folder"),
        ([npz, tmp_path / "y.stylegan"], "not a model file"),
        ([src, "/proc/m.stylegan"], "cannot"),
    ]
    for args, message in cases:
        r = _convert(*args)
        assert r.exit_code != 0 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
        assert "Traceback" not in r.output
    assert out.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "m.stylegan"]
    assert _convert(src, out, "--overwrite").exit_code == 0
    _assert_same_model(stylegan.load(src), stylegan.load(out))


def test_convert_help_names_no_nvidia_output():
    r = CliRunner().invoke(main, ["convert", "--help"])
    assert r.exit_code == 0 and "--overwrite" in r.output and "--format" not in r.output
