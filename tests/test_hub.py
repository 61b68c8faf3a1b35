"""Download cache and model zoo, against a loopback HTTP server; nothing here leaves 127.0.0.1."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.models import models
from conftest import dead_pid
from stylegan import hub, model_zoo
from stylegan._files import _HOST

BODY = os.urandom(300_000)  # big enough that a cut connection really ends mid-body


class _Handler(BaseHTTPRequestHandler):
    # route -> behaviour; each returns after writing (or deliberately not finishing) a response
    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        self.server.hits[path] = self.server.hits.get(path, 0) + 1
        route = self.server.routes.get(path)
        if route is None:
            return self.send_error(404, "Not Found")
        route(self)

    def log_message(self, *args):  # keep test output clean
        pass


def _serve(body: bytes, length: int | None = None, cut: int | None = None, status: int = 200):
    """Handler sending `body` with Content-Length `length` (default: true length); with `cut`,
    it sends only that many bytes and then drops the connection."""
    def route(h):
        if status != 200:
            return h.send_error(status)
        h.send_response(200)
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body if cut is None else body[:cut])
        h.wfile.flush()
        h.close_connection = True
    return route


def _slow(h):
    time.sleep(1.5)  # longer than the client's timeout in the test
    try:
        _serve(b"late")(h)
    except OSError:
        pass  # the client gave up first, as intended


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.hits = {}
    srv.routes = {
        "/models/net.pkl": _serve(BODY),
        "/other/net.pkl": _serve(BODY[::-1]),
        "/lies.pkl": _serve(BODY, length=len(BODY) + 1000),
        "/cut.pkl": _serve(BODY, cut=len(BODY) // 3),
        "/boom.pkl": _serve(b"", status=500),
        "/slow.pkl": _slow,
    }
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder via STYLEGAN_CACHE, so no test touches ~/.cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("STYLEGAN_CACHE", str(folder))
    return folder


def _files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_then_reuse_cache(server, cache):
    url = server.url + "/models/net.pkl"
    first = hub.resolve(url, progress=False)
    assert first.parent == cache and first.read_bytes() == BODY
    hits = server.hits["/models/net.pkl"]
    assert hub.resolve(url, progress=False) == first
    assert server.hits["/models/net.pkl"] == hits  # no network the second time
    assert _files(cache) == [first.name]


def test_same_file_name_from_different_urls_does_not_collide(server, cache):
    a = hub.resolve(server.url + "/models/net.pkl", progress=False)
    b = hub.resolve(server.url + "/other/net.pkl", progress=False)
    assert a != b and a.name.endswith("net.pkl") and b.name.endswith("net.pkl")
    assert a.read_bytes() == BODY and b.read_bytes() == BODY[::-1]


def test_cache_dir_argument_overrides_env(server, cache, tmp_path):
    mine = tmp_path / "mine"
    path = hub.resolve(server.url + "/models/net.pkl", cache_dir=mine, progress=False)
    assert path.parent == mine and path.read_bytes() == BODY
    assert _files(cache) == []


def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "x"))
    assert hub.default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("STYLEGAN_CACHE")
    assert hub.default_cache_dir() == Path.home() / ".cache" / "stylegan"


def test_progress_bar_reports_bytes_and_rate(server, cache, capsys):
    hub.resolve(server.url + "/models/net.pkl", progress=True)
    err = capsys.readouterr().err
    assert "net.pkl" in err and "100%" in err and "/s" in err
    hub.resolve(server.url + "/other/net.pkl", progress=False)
    assert capsys.readouterr().err == ""


def _refused_url() -> str:
    with socket.socket() as s:  # bind, learn the port, release it: nothing listens there now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/net.pkl"


@pytest.mark.parametrize("route, reason", [
    ("/missing.pkl", "http 404"),
    ("/boom.pkl", "http 500"),
    ("/lies.pkl", "truncated"),
    ("/cut.pkl", "truncated"),
    ("refused", "refused"),
])
def test_failures_raise_download_error_and_leave_no_file(server, cache, route, reason):
    url = _refused_url() if route == "refused" else server.url + route
    with pytest.raises(hub.DownloadError) as info:
        hub.resolve(url, progress=False)
    message = str(info.value)
    assert url in message and reason in message.lower()
    assert "\n" not in message
    assert _files(cache) == []


def test_timeout_is_a_download_error(server, cache):
    url = server.url + "/slow.pkl"
    with pytest.raises(hub.DownloadError, match="timed out") as info:
        hub.resolve(url, progress=False, timeout=0.3)
    assert url in str(info.value)
    assert _files(cache) == []


def test_checksum_and_size_mismatch(server, cache):
    url = server.url + "/models/net.pkl"
    dest = cache / "net.pkl"
    with pytest.raises(hub.DownloadError, match="sha256 mismatch"):
        hub.download(url, dest, sha256="0" * 64, progress=False)
    with pytest.raises(hub.DownloadError, match="registry expects"):
        hub.download(url, dest, size=len(BODY) - 1, progress=False)
    assert _files(cache) == []
    good = hashlib.sha256(BODY).hexdigest()
    assert hub.download(url, dest, size=len(BODY), sha256=good.upper(), progress=False).read_bytes() == BODY


def test_interrupt_removes_temp_file(server, cache, monkeypatch):
    def interrupt(self, done):
        raise KeyboardInterrupt
    monkeypatch.setattr(hub._Progress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        hub.resolve(server.url + "/models/net.pkl", progress=True)
    assert _files(cache) == []


def test_stale_temp_files_are_swept(server, cache):
    """A download killed outright leaves its temp file; the next download into the cache removes it,
    and leaves alone the temp file of a download still running."""
    url = server.url + "/models/net.pkl"
    dest = hub.cache_path(url)
    cache.mkdir()
    dead, live = dead_pid(), os.getpid()
    old = cache / f".{dest.stem}.{_HOST}-{dead}.tmp{dest.suffix}"
    running = cache / f".other.{_HOST}-{live}.tmp.pkl"
    old.write_bytes(b"x")
    running.write_bytes(b"y")
    hub.resolve(url, progress=False)
    assert not old.exists() and running.exists()


def test_local_paths(tmp_path, cache):
    f = tmp_path / "net.pkl"
    f.write_bytes(b"local")
    assert hub.resolve(f) == f and hub.resolve(str(f)) == f
    with pytest.raises(FileNotFoundError, match="no such file"):
        hub.resolve(tmp_path / "absent.pkl")
    with pytest.raises(FileNotFoundError, match="did you mean: ffhq"):
        hub.resolve("ffhqq")
    assert _files(cache) == []


def _fake_entry(url: str, **kw) -> model_zoo.ModelEntry:
    return model_zoo.ModelEntry("test-net", url, 64, "nvidia-pickle", "test", "https://example.invalid",
                                "stylegan2", "test", aliases=("tnet",), **kw)


def test_registry_name_downloads_with_registry_checks(server, cache, monkeypatch, tmp_path):
    url = server.url + "/models/net.pkl"
    good = _fake_entry(url, size=len(BODY), sha256=hashlib.sha256(BODY).hexdigest())
    monkeypatch.setattr(model_zoo, "MODELS", (good,))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tnet").mkdir()  # a folder named like the model must not shadow it
    assert hub.cached("tnet") is None
    path = hub.resolve("tnet", progress=False)
    assert path == hub.cache_path(url) and path.read_bytes() == BODY
    assert hub.cached("test-net") == path

    monkeypatch.setattr(model_zoo, "MODELS", (_fake_entry(server.url + "/other/net.pkl", sha256="f" * 64),))
    with pytest.raises(hub.DownloadError, match="sha256 mismatch"):
        hub.resolve("test-net", progress=False)
    assert _files(cache) == [path.name]


def test_registry_entries_are_well_formed():
    names = model_zoo.names(include_aliases=True)
    assert len(names) == len(set(names)) == len(model_zoo.MODELS) + sum(len(e.aliases) for e in model_zoo.MODELS)
    urls = [e.url for e in model_zoo.MODELS]
    assert len(urls) == len(set(urls))
    for e in model_zoo.MODELS:
        parts = urllib.parse.urlsplit(e.url)
        assert parts.scheme == "https" and parts.netloc.endswith("nvidia.com") and e.url.endswith(".pkl"), e
        assert e.format in model_zoo.FORMATS, e
        assert e.resolution >= 4 and e.resolution & (e.resolution - 1) == 0, e
        assert e.name == e.name.lower() and " " not in e.name, e
        assert e.licence and e.licence_url.startswith("https://"), e
        assert e.size is None or e.size > 0, e
        assert e.sha256 is None or (len(e.sha256) == 64 and int(e.sha256, 16) >= 0), e


def test_registry_holds_the_expected_models():
    assert model_zoo.get_model("ffhq").url == \
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl"
    sg3 = model_zoo.get_model("stylegan3-r-afhqv2-512")
    assert sg3.filename == "stylegan3-r-afhqv2-512x512.pkl" and sg3.resolution == 512
    assert model_zoo.get_model("STYLEGAN2-FFHQ-CONFIG-F").format == "tf-pickle"
    assert {e.family for e in model_zoo.MODELS} == {"stylegan2", "stylegan2-ada", "stylegan3-t", "stylegan3-r"}


def test_get_model_unknown_name_suggests_close_ones():
    with pytest.raises(model_zoo.UnknownModelError, match="stylegan3-t-ffhq-1024") as info:
        model_zoo.get_model("stylegan3-t-ffhq-102")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="stylegan models"):
        model_zoo.get_model("no-such-thing-at-all")


def test_models_command_lists_registry(cache, server, monkeypatch):
    result = CliRunner().invoke(models, [])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 + len(model_zoo.MODELS)
    ffhq = next(line for line in lines if line.startswith("stylegan2-ada-ffhq "))
    assert ffhq.split()[1:5] == ["ffhq", "1024", "nvidia-pickle", "-"]

    monkeypatch.setattr(model_zoo, "MODELS", (_fake_entry(server.url + "/models/net.pkl"),))
    result = CliRunner().invoke(models, ["--fetch", "tnet", "--cached", "-q"])
    assert result.exit_code == 0, result.output
    assert "test-net  tnet" in result.output and " cached " in result.output
    assert CliRunner().invoke(models, ["--help"]).output.count("stylegan models") >= 1
    bad = CliRunner().invoke(models, ["--fetch", "nope-model"])
    assert bad.exit_code != 0 and "unknown model" in bad.output


def test_load_and_generate_from_url(server, cache, tmp_path):
    """stylegan.load and `stylegan generate --network URL` fetch a real network through the cache."""
    import numpy as np
    from click.testing import CliRunner

    import stylegan
    from conftest import load_npz, reference_path
    from scripts.cli import main

    server.routes["/fixtures/sg3_r.pkl"] = _serve(reference_path("sg3_r.pkl").read_bytes())
    url = server.url + "/fixtures/sg3_r.pkl"
    nets = stylegan.load(url)
    assert nets.format == "nvidia-pickle" and nets["G_ema"].arch == "stylegan3"
    r = CliRunner().invoke(main, ["generate", "--network", url, "--seeds", "0-3", "--trunc", "0.7",
                                  "--outdir", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert server.hits["/fixtures/sg3_r.pkl"] == 1       # the second use came from the cache
    from PIL import Image
    got = np.stack([np.asarray(Image.open(tmp_path / "o" / f"seed{s:04d}.png")) for s in range(4)])
    want = load_npz("sg3_r")["img_uint8_psi0.7_const"]
    assert np.abs(got.astype(int) - want).max() <= 1
    missing = CliRunner().invoke(main, ["info", server.url + "/nothing.pkl"])
    assert missing.exit_code == 1 and "404" in missing.output and "Traceback" not in missing.output
