"""Download cache and registry, against a loopback HTTP server; nothing here leaves 127.0.0.1."""
from __future__ import annotations

import bz2
import hashlib
import io
import os
import re
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
from stylegan import hub
from stylegan.hub import registry
from stylegan.io.files import _HOST
from stylegan.progress import Progress, current, reporting

BODY = os.urandom(300_000)  # big enough that a cut connection really ends mid-body
DAT = bytes(range(256)) * 12_000  # compressible, so its bz2 form is far shorter than it
DAT_BZ2 = bz2.compress(DAT)


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


def _no_length(h):
    """The body with no Content-Length: its end is the connection's end (HTTP/1.0)."""
    h.send_response(200)
    h.send_header("Content-Type", "application/octet-stream")
    h.end_headers()
    h.wfile.write(BODY)
    h.wfile.flush()
    h.close_connection = True


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
        "/sizeless/net.pkl": _no_length,
        "/dlib/model.dat.bz2": _serve(DAT_BZ2),
        "/dlib/twice.dat.bz2": _serve(DAT_BZ2 + bz2.compress(b"tail")),  # multi-stream, as pbzip2 writes
        "/dlib/cut.dat.bz2": _serve(DAT_BZ2[: len(DAT_BZ2) // 2]),
        "/dlib/junk.dat.bz2": _serve(BODY),
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


def test_default_progress_is_silent_without_a_sink(server, cache, capfd):
    """The library never prints: a download with the default progress, and no front end that installed
    a sink, writes nothing to either stream."""
    path = hub.resolve(server.url + "/models/net.pkl")
    assert path.read_bytes() == BODY
    assert capfd.readouterr() == ("", "")


def test_default_progress_reports_to_the_installed_sink(server, cache, capfd):
    """Downloads deep inside the library (default progress) report to the sink of the innermost
    `reporting` block; an explicit progress=False still silences them; leaving the block restores none."""
    calls, inner = [], []
    with reporting(calls.append):
        hub.resolve(server.url + "/models/net.pkl")
        with reporting(inner.append):
            hub.fetch(_fake_entry(server.url + "/other/net.pkl"))
        hub.resolve(server.url + "/sizeless/net.pkl", progress=False)
    hub.resolve(server.url + "/dlib/model.dat.bz2")
    assert current() is None
    dones = [e.done for e in calls]
    assert dones == sorted(dones) and dones[-1] == len(BODY)
    assert {(e.stage, e.total, e.item) for e in calls} == {("download", len(BODY), "net.pkl")}
    assert inner and inner[-1].done == inner[-1].total == len(BODY)
    assert capfd.readouterr() == ("", "")


def test_download_of_unknown_size_ends_with_its_total(server, cache):
    """A server that does not say the size: events carry no total until the last, which says done == total."""
    calls = []
    with reporting(calls.append):
        assert hub.resolve(server.url + "/sizeless/net.pkl").read_bytes() == BODY
    assert all(e.total is None for e in calls[:-1]) and calls[-1].done == calls[-1].total == len(BODY)


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def test_models_fetch_shows_download_through_progress_printer(server, cache, monkeypatch):
    """`stylegan models --fetch` in a log (not a terminal): one line for the finished download, bytes in
    human units and a rate, named by the file; --quiet leaves only the fetched path."""
    monkeypatch.setattr(registry, "ENTRIES", (_fake_entry(server.url + "/models/net.pkl"),))
    result = CliRunner().invoke(models, ["--fetch", "tnet"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("download")]
    assert len(lines) == 1, result.stderr
    assert f"{_kib(len(BODY))}/{_kib(len(BODY))} at " in lines[0] and "/s" in lines[0]
    assert lines[0].endswith("net.pkl") and str(len(BODY)) not in lines[0]     # human units, not raw bytes

    hub.cached(server.url + "/models/net.pkl").unlink()
    quiet = CliRunner().invoke(models, ["--fetch", "tnet", "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr.splitlines() == [f"tnet: {hub.cached('tnet')}"]


def test_cli_group_shows_deep_downloads(server, cache, tmp_path):
    """A command that loads a network by URL downloads it deep inside the loaders, with no progress
    argument: the group's ProgressPrinter shows it."""
    from conftest import reference_path
    from scripts.cli import main
    server.routes["/fixtures/shown.pkl"] = _serve(reference_path("sg3_r.pkl").read_bytes())
    size = reference_path("sg3_r.pkl").stat().st_size
    r = CliRunner().invoke(main, ["info", server.url + "/fixtures/shown.pkl"])
    assert r.exit_code == 0, r.output
    shown = [line for line in r.stderr.splitlines() if line.startswith("download")]
    assert 1 << 20 < size < 10 << 20
    assert len(shown) == 1 and shown[0].endswith("shown.pkl") and f"/{size / 2**20:.1f} MiB at " in shown[0], r.stderr


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_printer_download_stage():
    """Bytes in human units: on a terminal a bar with amounts and rate (not raw byte positions); in a
    log, a download of unknown size gets a line per `every_s` seconds, not per chunk, and its end."""
    from scripts.common import ProgressPrinter
    tty = _Terminal()
    with ProgressPrinter(tty) as show:
        assert current() is show            # entered, the command's printer also shows deep downloads
        for done in (1 << 20, 2 << 20, 3 << 20):
            show(Progress("download", done, 3 << 20, item="big.pkl", seconds=done / (1 << 20)))
    assert "3.0 MiB/3.0 MiB at 1.0 MiB/s" in tty.getvalue() and "big.pkl" in tty.getvalue()
    assert str(3 << 20) not in tty.getvalue() and current() is None

    log = io.StringIO()
    show = ProgressPrinter(log, quiet=2.0, every_s=10.0)
    for second in range(31):        # a chunk every second, size unknown until the end
        show(Progress("download", (second + 1) << 20, None, item="big.pkl", seconds=float(second)))
    show(Progress("download", 31 << 20, 31 << 20, item="big.pkl", seconds=31.0))
    lines = log.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["3.0", "11.0", "21.0", "31.0", "31.0"], lines
    assert lines[-1].startswith("download 31.0 MiB/31.0 MiB at 1.0 MiB/s")


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
    wrong = good[:7] + ("0" if good[7] != "0" else "1")
    with pytest.raises(hub.DownloadError, match="sha256 mismatch"):   # a prefix, as torch.hub names files
        hub.download(url, dest, sha256=wrong, progress=False)
    assert _files(cache) == []
    assert hub.download(url, dest, sha256=good[:8], progress=False).read_bytes() == BODY
    dest.unlink()
    assert hub.download(url, dest, size=len(BODY), sha256=good.upper(), progress=False).read_bytes() == BODY


def test_interrupt_removes_temp_file(server, cache):
    def interrupt(event):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        hub.resolve(server.url + "/models/net.pkl", progress=interrupt)
    assert _files(cache) == []


def test_progress_callback_gets_bytes_and_total(server, cache, capsys):
    calls = []
    hub.resolve(server.url + "/models/net.pkl", progress=calls.append)
    dones = [e.done for e in calls]
    assert dones == sorted(dones) and dones[-1] == len(BODY) and len(calls) >= 1
    assert {(e.stage, e.total, e.item) for e in calls} == {("download", len(BODY), "net.pkl")}
    assert capsys.readouterr().err == ""


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
    with pytest.raises(hub.NotFoundError) as info:
        hub.resolve(tmp_path / "absent.pkl")
    assert str(info.value) == f"{tmp_path / 'absent.pkl'}: no such file"
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)
    assert _files(cache) == []


@pytest.mark.parametrize("source", ["", "  "])
def test_no_model_given(source, cache):
    with pytest.raises(ValueError) as info:
        hub.resolve(source)
    assert str(info.value) == "no model given (an empty path or name)"


def test_unknown_name_is_one_line_with_suggestions(tmp_path, cache, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(hub.NotFoundError) as info:
        hub.resolve("ffhqq")
    assert str(info.value) == ("ffhqq: neither a file nor a known model; did you mean stylegan2-ada-ffhq, ffhq? "
                               "(`stylegan models` lists them)")
    with pytest.raises(hub.NotFoundError) as info:
        hub.resolve("zzzzzzzzqqqq")
    assert str(info.value) == "zzzzzzzzqqqq: neither a file nor a known model (`stylegan models` lists them)"
    assert _files(cache) == []


def test_architecture_name_is_not_a_download(tmp_path, cache, monkeypatch):
    """A create_model config names weights nowhere: `load` says what it is instead of 'unknown' (the
    hub, which knows nothing of architectures, only that it is no download), or gives random weights
    when asked, the same ones every time."""
    import stylegan
    monkeypatch.chdir(tmp_path)
    with pytest.raises(hub.NotFoundError, match="^stylegan3-t-1024: neither a file nor a known model"):
        hub.resolve("stylegan3-t-1024")
    with pytest.raises(stylegan.LoadError) as info:
        stylegan.load("stylegan3-t-1024")
    msg = str(info.value)
    assert msg.startswith("stylegan3-t-1024: an architecture without weights (create_model builds it)")
    assert "stylegan3-t-ffhq-1024" in msg and "\n" not in msg and _files(cache) == []
    torch = pytest.importorskip("torch")
    torch.manual_seed(123)
    a = stylegan.load("stylegan2-256", untrained=True)
    torch.manual_seed(456)
    b = stylegan.load("stylegan2-256", untrained=True)
    assert a.format == "untrained" and a.keys() == ["G_ema"] and a.generator.img_resolution == 256
    assert all(torch.equal(x, y) for x, y in zip(a.generator.state_dict().values(), b.generator.state_dict().values()))
    assert stylegan.load("stylegan2-d-256", untrained=True).keys() == ["D"]
    with pytest.raises(stylegan.LoadError, match="^stylegan3: an architecture without settings: .*stylegan3-t-256"):
        stylegan.load("stylegan3", untrained=True)
    # A file of that name is the file.
    (tmp_path / "stylegan2-256").write_bytes(b"not a model")
    with pytest.raises(stylegan.LoadError, match="not a model|expected"):
        stylegan.load("stylegan2-256", untrained=True)
    assert _files(cache) == []


def test_refused_url_is_named_once_reason_lower_case(cache):
    url = _refused_url()
    with pytest.raises(hub.DownloadError) as info:
        hub.resolve(url, progress=False)
    assert str(info.value) == f"{url}: connection refused"


def _fake_entry(url: str, **kw) -> hub.Entry:
    return hub.Entry("test-net", "gan", url, "test", "https://example.invalid", aliases=("tnet",),
                     format="nvidia-pickle", resolution=64, family="stylegan2", dataset="test", **kw)


def _fake_asset(url: str, packaged: tuple[str, str] | None = None, **kw) -> hub.Entry:
    return hub.Entry("test-landmarks", "landmarks", url, "test", "https://example.invalid", format="dlib",
                     packaged=packaged, **kw)


def test_registry_name_downloads_with_registry_checks(server, cache, monkeypatch, tmp_path):
    url = server.url + "/models/net.pkl"
    good = _fake_entry(url, size=len(BODY), sha256=hashlib.sha256(BODY).hexdigest())
    monkeypatch.setattr(registry, "ENTRIES", (good,))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tnet").mkdir()  # a folder named like the model must not shadow it
    assert hub.cached("tnet") is None
    path = hub.resolve("tnet", progress=False)
    assert path == hub.cache_path(url) and path.read_bytes() == BODY
    assert hub.cached("test-net") == path

    monkeypatch.setattr(registry, "ENTRIES", (_fake_entry(server.url + "/other/net.pkl", sha256="f" * 64),))
    with pytest.raises(hub.DownloadError, match="sha256 mismatch"):
        hub.resolve("test-net", progress=False)
    assert _files(cache) == [path.name]


def test_bz2_asset_is_decompressed_into_the_cache(server, cache, monkeypatch):
    url = server.url + "/dlib/model.dat.bz2"
    monkeypatch.setattr(registry, "ENTRIES", (_fake_asset(url),))
    entry = hub.lookup("test-landmarks")
    assert entry.compression == "bz2" and entry.filename == "model.dat"
    assert hub.cached("test-landmarks") is None
    path = hub.resolve("test-landmarks", progress=False)
    assert path.name.endswith("-model.dat") and path.read_bytes() == DAT
    assert _files(cache) == [path.name]                    # no .bz2 left beside it
    hits = server.hits["/dlib/model.dat.bz2"]
    assert hub.resolve("test-landmarks", progress=False) == path == hub.cached("test-landmarks")
    assert server.hits["/dlib/model.dat.bz2"] == hits


def test_multi_stream_bz2(server, cache, monkeypatch):
    monkeypatch.setattr(registry, "ENTRIES", (_fake_asset(server.url + "/dlib/twice.dat.bz2"),))
    assert hub.resolve("test-landmarks", progress=False).read_bytes() == DAT + b"tail"


@pytest.mark.parametrize("route, reason", [("/dlib/cut.dat.bz2", "bz2 data ends early"),
                                           ("/dlib/junk.dat.bz2", "not valid bz2 data")])
def test_bad_bz2_is_a_download_error_and_leaves_no_file(server, cache, monkeypatch, route, reason):
    url = server.url + route
    monkeypatch.setattr(registry, "ENTRIES", (_fake_asset(url),))
    with pytest.raises(hub.DownloadError) as info:
        hub.resolve("test-landmarks", progress=False)
    assert str(info.value).startswith(f"{url}: {reason}") and str(info.value).count(url) == 1
    assert _files(cache) == []


def _fake_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    """A package `name` under `root` whose import fails, so finding its files must not import it."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text("raise ImportError('imported, but it must only be located')\n")
    for rel, data in files.items():
        (root / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / name / rel).write_bytes(data)


def test_packaged_copy_comes_first(server, cache, monkeypatch, tmp_path):
    """An asset a pip package ships is used as is, found without importing the package;
    without the package it is downloaded."""
    import sys
    _fake_package(tmp_path / "site", "shipspkg", {"models/model.dat": b"packaged"})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    url = server.url + "/dlib/model.dat.bz2"
    monkeypatch.setattr(registry, "ENTRIES", (_fake_asset(url, ("shipspkg", "models/model.dat")),))
    shipped = tmp_path / "site" / "shipspkg" / "models" / "model.dat"
    hits = server.hits.get("/dlib/model.dat.bz2", 0)
    assert hub.resolve("test-landmarks", progress=False) == shipped == hub.cached("test-landmarks")
    assert hub.where(hub.lookup("test-landmarks")) == "packaged"
    assert "shipspkg" not in sys.modules and _files(cache) == []
    assert server.hits.get("/dlib/model.dat.bz2", 0) == hits

    monkeypatch.setattr(registry, "ENTRIES", (_fake_asset(url, ("shipspkg", "models/absent.dat")),))
    assert hub.where(hub.lookup("test-landmarks")) is None
    assert hub.resolve("test-landmarks", progress=False).read_bytes() == DAT
    assert hub.where(hub.lookup("test-landmarks")) == "cached"


def test_packaged_copy_behind_a_shadowing_module(monkeypatch, tmp_path):
    """A same-named module earlier on sys.path (a user's `lpips.py` in the working folder) hides the
    package from the import system; the installed distribution's file list still finds the file."""
    import sys
    (tmp_path / "first").mkdir()
    (tmp_path / "first" / "shadowpkg.py").write_text("raise ImportError('must not be imported')\n")
    site = tmp_path / "site"
    _fake_package(site, "shadowpkg", {"weights/v0.1/vgg.pth": b"w"})
    info = site / "shadowpkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shadowpkg\nVersion: 1.0\n")
    (info / "RECORD").write_text("shadowpkg/__init__.py,,\nshadowpkg/weights/v0.1/vgg.pth,,\n"
                                 "shadowpkg-1.0.dist-info/RECORD,,\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(tmp_path / "first"))
    assert hub.package_file("shadowpkg", "weights/v0.1/vgg.pth") == site / "shadowpkg" / "weights" / "v0.1" / "vgg.pth"
    assert hub.package_file("shadowpkg", "weights/v0.1/alex.pth") is None
    assert hub.package_file("no_such_package_anywhere", "x.dat") is None
    assert "shadowpkg" not in sys.modules


def test_torch_hub_copy_comes_first(server, cache, monkeypatch, tmp_path):
    """torchvision's weights already in torch.hub's checkpoint folder are used, not downloaded again."""
    import torch.hub
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = server.url + "/models/net.pkl"
    monkeypatch.setattr(registry, "ENTRIES", (_fake_entry(url, torch_hub=True),))
    assert hub.where(hub.lookup("tnet")) is None
    held = tmp_path / "torch" / "hub" / "checkpoints" / "net.pkl"
    held.parent.mkdir(parents=True)
    held.write_bytes(b"from torchvision")
    assert hub.resolve("tnet", progress=False) == held == hub.cached("tnet")
    assert hub.where(hub.lookup("tnet")) == "packaged" and _files(cache) == []


def test_landmark_model_path_goes_through_the_registry(server, cache, monkeypatch):
    import stylegan.faces.landmarks as landmarks
    dlib_entry = hub.lookup("dlib-landmarks-68")
    assert dlib_entry.packaged == ("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
    monkeypatch.setattr(registry, "ENTRIES", (
        hub.Entry("dlib-landmarks-68", "landmarks", server.url + "/dlib/model.dat.bz2", "t", "https://x.invalid",
                  packaged=("no_such_package_anywhere", "models/model.dat")),))
    assert landmarks.packaged_model("landmarks-68") is None
    path = landmarks.model_path("landmarks-68")
    assert open(path, "rb").read() == DAT
    assert path == str(hub.entry_path(hub.lookup("dlib-landmarks-68")))


def test_registry_entries_are_well_formed():
    from stylegan.networks import list_configs
    names = hub.names(include_aliases=True)
    assert len(names) == len(set(names)) == len(registry.ENTRIES) + sum(len(e.aliases) for e in registry.ENTRIES)
    urls = [e.url for e in registry.ENTRIES]
    assert len(urls) == len(set(urls))
    assert {e.kind for e in registry.ENTRIES} == set(hub.KINDS)
    for e in registry.ENTRIES:
        parts = urllib.parse.urlsplit(e.url)
        assert e.kind in hub.KINDS and e.format in registry.FORMATS, e
        assert e.name == e.name.lower() and " " not in e.name, e
        assert e.licence and e.licence_url.startswith("https://"), e
        assert e.size is None or e.size > 0, e
        # a whole digest, or a torch.hub file name's prefix (which must then be in the name)
        assert e.sha256 is None or (8 <= len(e.sha256) <= 64 and int(e.sha256, 16) >= 0), e
        assert e.sha256 is None or len(e.sha256) == 64 or f"-{e.sha256}." in e.filename, e
        if e.kind == "gan":
            assert parts.scheme == "https" and parts.netloc.endswith("nvidia.com") and e.url.endswith(".pkl"), e
            assert e.resolution >= 4 and e.resolution & (e.resolution - 1) == 0, e
            assert e.family and e.dataset, e
            assert e.config is None or e.config in list_configs(), e
        else:
            assert e.resolution is None and e.family is None, e
        if e.format == "dlib":
            assert e.url.startswith("http://dlib.net/files/") and e.compression == "bz2", e
            assert e.packaged == ("face_recognition_models", f"models/{e.filename}"), e
        if e.kind == "direction":
            # pinned to a commit, so the size and digest taken from that commit's blobs hold
            assert re.search(r"/[0-9a-f]{40}/", e.url) and e.size and len(e.sha256 or "") == 64, e
            assert hub.lookup(e.network).kind == "gan", e
        else:
            assert e.network is None, e


def test_registry_holds_the_expected_models():
    assert hub.lookup("ffhq").url == "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl"
    sg3 = hub.lookup("stylegan3-r-afhqv2-512")
    assert sg3.filename == "stylegan3-r-afhqv2-512x512.pkl" and sg3.resolution == 512
    assert hub.lookup("STYLEGAN2-FFHQ-CONFIG-F").format == "tf-pickle"
    assert {e.family for e in hub.entries("gan")} == {"stylegan2", "stylegan2-ada", "stylegan3-t", "stylegan3-r"}
    assert hub.lookup("vgg16").url == \
        "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
    lm = hub.lookup("dlib-landmarks-68")
    assert lm.kind == "landmarks" and lm.filename == "shape_predictor_68_face_landmarks.dat"
    assert "non-commercial" in lm.licence.lower() and "non-commercial" in lm.description.lower()
    assert hub.lookup("dlib-face-detector").filename == "mmod_human_face_detector.dat"
    assert hub.lookup("dlib-face-id").filename == "dlib_face_recognition_resnet_model_v1.dat"
    assert hub.names(kind="perceptual") == ["vgg16", "torchvision-vgg16", "lpips-vgg-v0.1"]
    assert hub.lookup("torchvision-vgg16").url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert hub.lookup("lpips-vgg-v0.1").packaged == ("lpips", "weights/v0.1/vgg.pth")
    assert {e.network for e in hub.entries("direction")} == {"stylegan2-ada-ffhq"}
    with pytest.raises(ValueError, match="unknown kind"):
        hub.entries("direction-file")


@pytest.mark.parametrize("name, key", [("stylegan3-t-ffhq-1024", "stylegan3 stylegan3-t ffhq-1024 G_ema"),
                                       ("stylegan3-r-ffhq-1024", "stylegan3 stylegan3-r ffhq-1024 G_ema")])
def test_create_model_agrees_with_registry_names(name, key):
    """A GAN's registry name builds its untrained architecture: the official network's tensors."""
    import json

    import stylegan
    from conftest import reference_path
    want = json.loads(reference_path("shapes.json").read_text())[key]
    G = stylegan.create_model(name)
    assert G.init_kwargs == want["init_kwargs"]
    assert [[k, list(v.shape)] for k, v in G.state_dict().items()] == [t[:2] for t in want["tensors"]]


@pytest.mark.parametrize("name, message", [
    ("stylegan2-ada-ffhq", "stylegan2-ada-ffhq: its architecture is read from the file; "
                           "stylegan.load('stylegan2-ada-ffhq') builds it with the weights"),
    ("ffhq", "ffhq: its architecture is read from the file; stylegan.load('ffhq') builds it with the weights"),
    ("vgg16", "vgg16: a perceptual asset, not a GAN"),
])
def test_create_model_of_other_registry_names_is_one_line(name, message):
    import stylegan
    with pytest.raises(ValueError) as info:
        stylegan.create_model(name)
    assert str(info.value) == message
    with pytest.raises(ValueError, match=r"^no-such-net: not an architecture, config or GAN") as info:
        stylegan.create_model("no-such-net")
    assert "\n" not in str(info.value) and "stylegan3-t-1024" in str(info.value)


def test_architecture_names_mean_the_same_to_create_model_and_load():
    """No architecture or config name is also a registry name for something else."""
    from stylegan.networks import list_archs, list_configs
    for name in list_archs() + list_configs():
        assert not hub.is_known(name) or hub.lookup(name).config == name, name
    # and every registry name create_model accepts builds the config its entry names
    for e in hub.entries("gan"):
        assert e.config is None or e.config in list_configs(), e


def test_lookup_unknown_name_suggests_close_ones():
    with pytest.raises(hub.UnknownModelError, match="stylegan3-t-ffhq-1024") as info:
        hub.lookup("stylegan3-t-ffhq-102")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError) as info:
        hub.lookup("no-such-thing-at-all")
    assert str(info.value) == "no-such-thing-at-all: not a known model (`stylegan models` lists them)"


def test_models_command_lists_registry(cache, server, monkeypatch):
    result = CliRunner().invoke(models, [])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 + len(registry.ENTRIES)
    assert lines[0].split()[:7] == ["NAME", "KIND", "ALIAS", "RES", "FORMAT", "LOCAL", "LICENCE"]
    ffhq = next(line for line in lines if line.startswith("stylegan2-ada-ffhq "))
    assert ffhq.split()[1:6] == ["gan", "ffhq", "1024", "nvidia-pickle", "-"]
    landmarks = next(line for line in lines if line.startswith("dlib-landmarks-68 "))
    assert landmarks.split()[1] == "landmarks" and "non-commercial" in landmarks

    only = CliRunner().invoke(models, ["--kind", "perceptual"])
    assert only.exit_code == 0 and [line.split() for line in only.output.strip().splitlines()[1:]] == [
        line.split() for line in lines if line.split()[1] == "perceptual"]
    assert CliRunner().invoke(models, ["--kind", "nope"]).exit_code != 0
    directions = CliRunner().invoke(models, ["--kind", "direction"])
    assert {line.split()[1] for line in directions.output.strip().splitlines()[1:]} == {"direction"}
    assert len(directions.output.strip().splitlines()) == 1 + len(hub.entries("direction"))

    monkeypatch.setattr(registry, "ENTRIES", (_fake_entry(server.url + "/models/net.pkl"),))
    result = CliRunner().invoke(models, ["--fetch", "tnet", "--cached", "-q"])
    assert result.exit_code == 0, result.output
    assert "test-net  gan   tnet" in result.output and " cached " in result.output
    assert CliRunner().invoke(models, ["--help"]).output.count("stylegan models") >= 1
    bad = CliRunner().invoke(models, ["--fetch", "nope-model"])
    assert bad.exit_code != 0 and "nope-model: not a known model" in bad.output


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
