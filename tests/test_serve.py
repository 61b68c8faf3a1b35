"""The explorer's endpoints with Starlette's test client: each picture against the library function
that defines it, each printed command run through the CLI, downloads, uploads, jobs, sessions."""
from __future__ import annotations

import hashlib
import io
import json
import threading
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from scripts.cli import main
from stylegan.editing import Direction, Move, edit_many, save_direction, sefa
from stylegan.networks.stylegan3 import pose_transform

from conftest import reference_path, serving_bytes

pytest.importorskip("fastapi", reason="the explorer's extra is not installed: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from stylegan.serve import create_app, load_networks  # noqa: E402
from stylegan.serve.renderer import Renderer, Superseded  # noqa: E402

NETWORKS = ["sg2ada_skip", "sg3_t", "sg2ada_resnet_cond"]


@pytest.fixture(scope="module")
def nets():
    return {n.name: n for n in load_networks([str(reference_path(f"{name}.pkl")) for name in NETWORKS])}


@pytest.fixture(scope="module")
def client(nets):
    with TestClient(create_app(list(nets.values())), base_url="http://127.0.0.1") as c:
        yield c


def new_session(client) -> dict:
    r = client.post("/api/session", headers={"X-Session": "new"})
    assert r.status_code == 200, r.text
    return {"X-Session": r.json()["session"]}


@pytest.fixture
def s(client):
    return new_session(client)


def png(r) -> np.ndarray:
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return np.asarray(Image.open(io.BytesIO(r.content)))


def render(client, s, **view):
    return png(client.post("/api/render", json=view, headers=s))


def error(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    message = r.json()["error"]
    assert "\n" not in message
    return message


def run_command(command: str, cwd, written: str = "*.png") -> np.ndarray:
    """Run a command the page printed (`stylegan ...`) through the CLI, in `cwd`; the image it wrote
    (the one PNG matching `written` in its --outdir)."""
    import os
    import shlex
    args = shlex.split(command.split("\n")[0])
    assert args[0] == "stylegan"
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(main, args[1:])
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    outdir = cwd / args[args.index("--outdir") + 1]
    (path,) = outdir.glob(written)
    return np.asarray(Image.open(path))


def test_generate_view_is_stylegan_generate(client, s, nets):
    for net, view, want in [
        ("sg2ada_skip", {"seed": 42, "psi": 0.7}, lambda G: stylegan.generate(G, [42], psi=0.7)),
        ("sg2ada_skip", {"seed": 7, "psi": -0.3, "noise_mode": "none"},
         lambda G: stylegan.generate(G, [7], psi=-0.3, noise_mode="none")),
        ("sg2ada_resnet_cond", {"seed": 3, "psi": 0.5, "class_idx": 4},
         lambda G: stylegan.generate(G, [3], psi=0.5, class_idx=4)),
        ("sg3_t", {"seed": 1, "psi": 0.7, "translate": [0.3, -0.2], "rotate": 15},
         lambda G: stylegan.generate(G, [1], psi=0.7, transform=pose_transform((0.3, -0.2), 15))),
    ]:
        np.testing.assert_array_equal(render(client, s, network=net, **view), want(nets[net].G)[0])
    # The posed render left the network itself upright.
    np.testing.assert_array_equal(render(client, s, network="sg3_t", seed=1, psi=0.7),
                                  stylegan.generate(nets["sg3_t"].G, [1], psi=0.7)[0])


def test_edits_and_mixing_are_the_library_s(client, s, nets):
    G = nets["sg2ada_skip"].G
    ws = stylegan.pipelines.map_seeds(G, [5], 0.7)
    edits = [{"direction": "sefa", "component": 1, "rows": [0, 1, 2, 3], "strength": 2.5},
             {"direction": "sefa", "component": 0, "strength": -1.5}]
    got = render(client, s, network="sg2ada_skip", seed=5, psi=0.7, edits=edits)
    want = edit_many(G, ws, [Move(sefa(G, [0, 1, 2, 3]), 2.5, 1, [0, 1, 2, 3]), Move(sefa(G, "all"), -1.5)])[0]
    np.testing.assert_array_equal(got, want)
    zero = [dict(e, strength=0.0) for e in edits]
    np.testing.assert_array_equal(render(client, s, network="sg2ada_skip", seed=5, psi=0.7, edits=zero),
                                  stylegan.generate(G, [5], psi=0.7)[0])
    mix = {"rows": [1, 2], "cols": [3, 4, 5], "styles": [0, 1, 2, 3]}
    got = render(client, s, network="sg2ada_skip", view="mix", psi=0.7, mix=mix)
    np.testing.assert_array_equal(got, stylegan.style_mix(G, [1, 2], [3, 4, 5], range(4), psi=0.7).grid())


def test_printed_commands_make_the_same_images(client, s, nets, tmp_path):
    """Every command the page shows, run through the CLI, writes the picture the page shows:
    generate, a StyleGAN3 pose with an edit, an uploaded direction file with an S-space one, mixing."""
    G = nets["sg2ada_skip"].G
    d = Direction(torch.nn.functional.normalize(torch.randn(3, G.w_dim, generator=torch.Generator().manual_seed(1)), dim=1))
    save_direction(d, tmp_path / "my dir.direction")
    r = client.post("/api/directions/upload", params={"network": "sg2ada_skip"},
                    content=(tmp_path / "my dir.direction").read_bytes(), headers={**s, "X-Filename": "my%20dir.direction"})
    assert r.status_code == 200, r.text
    assert r.json()["components"] == 3 and r.json()["space"] == "w"
    upload_id = r.json()["id"]
    views = [
        {"network": "sg2ada_skip", "seed": 11, "psi": 0.6},
        {"network": "sg3_t", "seed": 2, "psi": 0.8, "translate": [0.1, 0.05], "rotate": -20,
         "edits": [{"direction": "sefa", "component": 2, "rows": [0, 1, 2], "strength": 1.7}]},
        {"network": "sg2ada_skip", "seed": 3, "psi": 0.7, "noise_mode": "none",
         "edits": [{"direction": upload_id, "component": 2, "rows": [4, 5], "strength": -2.2},
                   {"direction": "sefa", "component": 0, "strength": 0.3}]},
        {"network": "sg2ada_resnet_cond", "view": "mix", "psi": 0.5, "class_idx": 2,
         "mix": {"rows": [5, 1], "cols": [7], "styles": [4, 5, 6, 7]}},
    ]
    for k, view in enumerate(views):
        shown = render(client, s, **view)
        command = client.post("/api/command", json=view, headers=s).json()["command"]
        cwd = tmp_path / f"run{k}"
        cwd.mkdir()
        (cwd / "my dir.direction").write_bytes((tmp_path / "my dir.direction").read_bytes())
        np.testing.assert_array_equal(run_command(command, cwd), shown, err_msg=command)
    assert "'my dir.direction:2@4-5:-2.2'" in client.post("/api/command", json=views[2], headers=s).json()["command"]


def test_downloads_carry_command_and_latent(client, s, nets):
    view = {"network": "sg2ada_skip", "seed": 9, "psi": 0.7,
            "edits": [{"direction": "sefa", "component": 1, "strength": 3.0}]}
    shown = render(client, s, **view)
    r = client.post("/api/download/image", json=view, headers=s)
    assert 'filename="sg2ada_skip-seed0009-edited.png"' in r.headers["content-disposition"]
    with Image.open(io.BytesIO(r.content)) as im:
        np.testing.assert_array_equal(np.asarray(im), shown)
        facts = json.loads(im.text["stylegan:provenance"])
    # The facts `stylegan edit --seeds 9 --edit sefa:1:3.0 --together` writes, plus the command and view.
    assert facts["details"]["command"] == client.post("/api/command", json=view, headers=s).json()["command"]
    assert facts["details"]["view"]["seed"] == 9
    assert facts["synthetic"] and facts["kind"] == "synthetic" and facts["operation"] == "edit"
    assert facts["network"] == nets["sg2ada_skip"].digest and facts["network_source"] == "sg2ada_skip.pkl"
    assert (facts["seed"], facts["psi"], facts["edits"]) == (9, 0.7, [{"direction": "sefa1", "strength": 3.0}])
    # The image on screen says the same, less the download's extras.
    with Image.open(io.BytesIO(client.post("/api/render", json=view, headers=s).content)) as im:
        on_screen = json.loads(im.text["stylegan:provenance"])
    assert on_screen == {k: v for k, v in facts.items() if k != "details"}
    r = client.post("/api/download/latent", json=view, headers=s)
    assert r.status_code == 200
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "x.w.safetensors"
        f.write_bytes(r.content)
        latents = stylegan.load_latents(f)
    assert latents.space == "w+" and latents.psi == 0.7 and latents.network_digest == nets["sg2ada_skip"].digest
    np.testing.assert_array_equal(stylegan.pipelines.synthesize(nets["sg2ada_skip"].G, latents.ws)[0], shown)
    # A mixing grid has no single latent: one line.
    assert "no single latent" in error(client.post("/api/download/latent", headers=s, json={
        "network": "sg2ada_skip", "view": "mix", "mix": {"rows": [1], "cols": [2], "styles": [0]}}), 400)


def test_bad_requests_are_one_line(client, s, tmp_path):
    assert "greater than or equal to 0" in error(client.post("/api/render", json={"network": "sg2ada_skip", "seed": -1},
                                                             headers=s), 422)
    assert "no network 'x'" in error(client.post("/api/render", json={"network": "x"}, headers=s), 404)
    assert "conditional" in error(client.post("/api/render", json={"network": "sg2ada_resnet_cond"}, headers=s), 400)
    assert "StyleGAN3" in error(client.post("/api/render", json={"network": "sg2ada_skip", "rotate": 5}, headers=s), 400)
    assert "out of range" in error(client.post("/api/render", headers=s, json={
        "network": "sg2ada_skip", "edits": [{"direction": "sefa", "rows": [99], "strength": 1}]}), 400)
    assert "not computed yet" in error(client.post("/api/render", headers=s, json={
        "network": "sg2ada_skip", "edits": [{"direction": "ganspace", "strength": 1}]}), 400)
    assert "no projected photo" in error(client.post("/api/render", json={"network": "sg2ada_skip", "view": "photo"},
                                                     headers=s), 400)
    assert "session has ended" in error(client.post("/api/render", json={"network": "sg2ada_skip"}), 401)
    assert "session has ended" in error(client.post("/api/render", json={"network": "sg2ada_skip"},
                                                    headers={"X-Session": "forged"}), 401)
    # Uploads: not an image, empty, a direction file of the wrong size or kind.
    assert "not an image" in error(client.post("/api/photo", content=b"hello", headers={**s, "X-Filename": "a.jpg"}), 400)
    assert "empty" in error(client.post("/api/photo", content=b"", headers=s), 400)
    small = Direction(torch.ones(1, 8))
    save_direction(small, tmp_path / "small.direction")
    r = client.post("/api/directions/upload", params={"network": "sg2ada_skip"},
                    content=(tmp_path / "small.direction").read_bytes(), headers={**s, "X-Filename": "small.direction"})
    assert error(r, 400).startswith("small.direction: direction has 8 dimensions")
    r = client.post("/api/directions/upload", params={"network": "sg2ada_skip"}, content=b"\x80\x04junk",
                    headers={**s, "X-Filename": "evil.pt"})
    assert error(r, 400).startswith("evil.pt: not a direction file")


def test_upload_limits(client, s, monkeypatch):
    """Size from the header and while reading; a decompression bomb refused before decoding."""
    from stylegan.serve import app as app_module
    big = Image.new("L", (9000, 6000))           # 54 Mpx of black: a few kB of PNG
    buf = io.BytesIO()
    big.save(buf, "PNG")
    assert len(buf.getvalue()) < 200_000
    assert "megapixel budget" in error(client.post("/api/photo", content=buf.getvalue(),
                                            headers={**s, "X-Filename": "bomb.png"}), 400)
    monkeypatch.setattr(app_module, "MAX_UPLOAD_BYTES", 1000)
    monkeypatch.setattr(app_module._read_upload, "__defaults__", (1000,))
    assert "larger than" in error(client.post("/api/photo", content=b"x" * 5000, headers=s), 413)

    def chunks():                                  # no Content-Length: counted while reading
        for _ in range(10):
            yield b"x" * 500
    assert "larger than" in error(client.post("/api/photo", content=chunks(), headers=s), 413)


def test_sessions_are_independent(client, s, tmp_path):
    other = new_session(client)
    assert other != s
    d = Direction(torch.nn.functional.normalize(torch.randn(2, 64), dim=1))
    save_direction(d, tmp_path / "a.direction")
    r = client.post("/api/directions/upload", params={"network": "sg2ada_skip"},
                    content=(tmp_path / "a.direction").read_bytes(), headers={**s, "X-Filename": "a.direction"})
    view = {"network": "sg2ada_skip", "edits": [{"direction": r.json()["id"], "strength": 1.0}]}
    assert client.post("/api/render", json=view, headers=s).status_code == 200
    assert "no uploaded direction" in error(client.post("/api/render", json=view, headers=other), 400)
    ids = [d["id"] for d in client.get("/api/directions", params={"network": "sg2ada_skip"}, headers=other).json()]
    assert ids == ["sefa", "ganspace"]


def test_loopback_names_and_custom_header_only(client):
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/").status_code == 200
    assert "X-Session" in error(client.post("/api/session"), 400)   # a plain form post from elsewhere


def test_renderer_keeps_only_the_newest_request_per_client():
    """While a render runs, 20 positions from one client leave one waiting (the newest); another
    client's request is not superseded and runs before the first client's next one."""
    r = Renderer()
    gate, order = threading.Event(), []
    first = r.submit("a", lambda: gate.wait(10) and order.append("a0"))
    time.sleep(0.1)
    futures = [r.submit("a", lambda i=i: order.append(f"a{i}") or i) for i in range(1, 21)]
    b = r.submit("b", lambda: order.append("b"))
    last = r.submit("a", lambda: order.append("a21") or 21)
    gate.set()
    assert last.result(10) == 21 and b.result(10) is None and first.result(10) is None
    for f in futures:
        with pytest.raises(Superseded):
            f.result(1)
    assert order == ["a0", "b", "a21"]
    r.close()


def test_ganspace_job_progress_and_cancel(client, s, nets):
    """GANSpace runs as a job; a projection job reports progress with previews over server-sent
    events, renders go on meanwhile, one job at a time, and cancelling stops it."""
    r = client.post("/api/directions", json={"network": "sg2ada_skip", "direction": "ganspace"}, headers=s)
    assert r.status_code == 200 and r.json()["state"] == "running", r.text
    deadline = time.monotonic() + 120
    while client.get("/api/job", headers=s).json()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get("/api/job", headers=s).json()["state"] == "done"
    G = nets["sg2ada_skip"].G
    got = render(client, s, network="sg2ada_skip", seed=4, psi=0.7,
                 edits=[{"direction": "ganspace", "component": 1, "strength": 2.0}])
    from stylegan.editing import ganspace
    want = edit_many(G, stylegan.pipelines.map_seeds(G, [4], 0.7), [Move(ganspace(G, num_samples=20_000), 2.0, 1)])[0]
    np.testing.assert_array_equal(got, want)

    import skimage.data
    buf = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buf, "JPEG", quality=95)
    r = client.post("/api/photo", content=buf.getvalue(), headers={**s, "X-Filename": "astronaut.jpg"})
    assert r.status_code == 200, r.text
    assert len(r.json()["faces"]) == 1 and r.json()["width"] == 512
    r = client.post("/api/photo/project", json={"network": "sg2ada_skip", "steps": 5000}, headers=s)
    assert r.status_code == 200 and r.json()["kind"] == "project", r.text
    assert "job is running" in error(client.post("/api/photo/project", json={"network": "sg2ada_skip"}, headers=s), 409)
    events = []
    with client.stream("GET", "/api/job/events", params={"session": s["X-Session"]}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(json.loads(line[6:]))
            if len(events) == 3:
                render(client, s, network="sg2ada_skip", seed=1)      # the server answers meanwhile
                assert client.post("/api/job/cancel", headers=s).json()["state"] == "running"
            if events[-1]["state"] != "running":
                break
    assert events[-1]["state"] == "cancelled", events[-1]
    running = [e for e in events if e["state"] == "running" and e["stage"] is not None]
    stages = [e["stage"] for e in running]          # the photo pipeline's: the face aligned, then projected
    assert stages == sorted(stages) and stages[-1] == "project", stages
    steps = [e["done"] for e in running if e["stage"] == "project"]
    assert steps == sorted(steps) and steps[-1] < 5000
    assert any(e["preview"] and e["preview"].startswith("data:image/png;base64,") for e in events)
    assert "no projected photo" in error(client.post("/api/render", json={"network": "sg2ada_skip", "view": "photo"},
                                                     headers=s), 400)


def test_photo_edit_paste_back_and_its_command(client, s, nets, tmp_path):
    """A real photo: align, project (few steps), edit, paste back; the download is the page's
    image with its metadata, and the printed `stylegan edit --photo` command makes the same image."""
    import skimage.data
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    r = client.post("/api/photo", content=photo.read_bytes(), headers={**s, "X-Filename": "astronaut.png"})
    assert r.status_code == 200, r.text
    assert client.post("/api/photo/project", json={"network": "sg2ada_skip", "steps": 4}, headers=s).status_code == 200
    deadline = time.monotonic() + 300
    while (job := client.get("/api/job", headers=s).json())["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job["state"] == "done", job
    edits = [{"direction": "sefa", "component": 0, "strength": 3.0}]
    crop0 = render(client, s, network="sg2ada_skip", view="photo")
    crop = render(client, s, network="sg2ada_skip", view="photo", edits=edits)
    assert crop.shape == (32, 32, 3) and np.abs(crop.astype(int) - crop0).mean() > 1
    pasted = render(client, s, network="sg2ada_skip", view="photo", edits=edits, paste_back=True)
    original = skimage.data.astronaut()
    # The page's picture is the photo pipeline's paste-back with the composite's watermark in it.
    from stylegan.pipelines.photo import edit_face, paste_faces
    from stylegan.provenance import Provenance, mark_pixels
    projection = client.app.state.explorer.sessions.get(s["X-Session"]).projected.projection
    unmarked = paste_faces(original, projection.face, edit_face(projection, ["sefa:0:3.0"], together=True))[0]
    marked, was_marked = mark_pixels(unmarked, Provenance(kind="composite", network=nets["sg2ada_skip"].digest))
    assert was_marked
    np.testing.assert_array_equal(pasted, marked)
    changed = np.any(unmarked != original, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.mean() < 0.3 and 100 < xs.mean() < 300 and 50 < ys.mean() < 250   # the face, not the photo
    verdict = stylegan.verify(client.post("/api/render", headers=s, json={
        "network": "sg2ada_skip", "view": "photo", "edits": edits, "paste_back": True}).content)
    assert verdict.watermark == "found" and verdict.mark.kind == "composite", verdict
    assert "projected with sg2ada_skip" in error(client.post("/api/render", json={"network": "sg3_t", "view": "photo"},
                                                             headers=s), 400)
    view = {"network": "sg2ada_skip", "view": "photo", "edits": edits, "paste_back": True}
    r = client.post("/api/download/image", json=view, headers=s)
    with Image.open(io.BytesIO(r.content)) as im:
        np.testing.assert_array_equal(np.asarray(im), pasted)
        facts = json.loads(im.text["stylegan:provenance"])
    assert "--photo astronaut.png" in facts["details"]["command"]
    assert facts["kind"] == "composite" and facts["operation"] == "paste-back"
    assert facts["photo"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    command = client.post("/api/command", json=view, headers=s).json()["command"]
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "astronaut.png").write_bytes(photo.read_bytes())
    # (the folder also keeps the projection: astronaut_aligned.png, astronaut_proj.png, ...)
    np.testing.assert_array_equal(run_command(command, tmp_path / "cli", "astronaut_edits.png"), pasted,
                                  err_msg=command)


def test_serve_command_lines(monkeypatch):
    """`stylegan serve` prints its URL, warns loudly off loopback, and says in one line when the
    port is taken or a network cannot be loaded."""
    import socket
    import stylegan.serve
    calls = []
    monkeypatch.setattr(stylegan.serve, "serve", lambda nets, host, port, open_browser, log, provenance: calls.append(
        (nets, host, port, provenance)) or log(stylegan.serve.url_for(host, port)))
    net = str(reference_path("sg2ada_skip.pkl"))
    r = CliRunner().invoke(main, ["serve", "--network", net, "--port", "0"])
    assert r.exit_code == 0, r.output
    assert calls[0][0][0].name == "sg2ada_skip" and calls[0][1] == "127.0.0.1" and "WARNING" not in r.output
    assert "http://127.0.0.1:0/" in r.output and "listening on 127.0.0.1 only" in r.output
    assert calls[0][3].watermark and calls[0][3].signer is None
    r = CliRunner().invoke(main, ["serve", "--network", net, "--port", "0", "--no-watermark"])
    assert r.exit_code == 0 and not calls[-1][3].watermark, r.output
    r = CliRunner().invoke(main, ["serve", "--network", net, "--host", "0.0.0.0", "--port", "0"])
    assert r.exit_code == 0 and "WARNING: listening on 0.0.0.0" in r.output, r.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        r = CliRunner().invoke(main, ["serve", "--network", net, "--port", str(taken.getsockname()[1])])
    assert r.exit_code != 0 and "pass another --port" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    r = CliRunner().invoke(main, ["serve", "--network", "missing.pkl", "--port", "0"])
    assert r.exit_code != 0 and "missing.pkl" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_registry_direction_is_fetched_by_a_job(tmp_path, monkeypatch, nets):
    """A network loaded by a registry name lists that GAN's registry directions; adding one fetches
    it (here from a loopback server) as a job, and the edit is the library's with that file."""
    from stylegan import hub
    from stylegan.editing import load_direction
    from stylegan.hub import registry
    from stylegan.serve import served
    G = nets["sg2ada_skip"].G
    buf = io.BytesIO()
    torch.save(torch.randn(1, G.w_dim, generator=torch.Generator().manual_seed(3)), buf)
    body = buf.getvalue()

    with serving_bytes(body) as url:
        entry = hub.Entry("test-smile", "direction", f"{url}/smile.pt", "test",
                          "https://example.invalid", "a test direction", format="e4e-pt", size=len(body),
                          network="test-gan")
        monkeypatch.setattr(registry, "ENTRIES", (entry,))
        monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
        net = served("gan", G, source="test-gan")
        net.registry_name = "test-gan"
        with TestClient(create_app([net]), base_url="http://127.0.0.1") as c:
            s = new_session(c)
            listed = c.get("/api/directions", params={"network": "gan"}, headers=s).json()
            assert listed[-1] == {"id": "registry:test-smile", "label": "test-smile", "space": "w", "components": None,
                                  "rows": None, "ready": False}
            view = {"network": "gan", "seed": 2, "psi": 0.7,
                    "edits": [{"direction": "registry:test-smile", "strength": 2.0}]}
            assert "not downloaded yet" in error(c.post("/api/render", json=view, headers=s), 400)
            assert c.post("/api/directions", json={"network": "gan", "direction": "registry:test-smile"},
                          headers=s).status_code == 200
            deadline = time.monotonic() + 60
            while (job := c.get("/api/job", headers=s).json())["state"] == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert job["state"] == "done", job
            d = load_direction(hub.cached("test-smile"))
            want = edit_many(G, stylegan.pipelines.map_seeds(G, [2], 0.7), [Move(d, 2.0)])[0]
            np.testing.assert_array_equal(render(c, s, **view), want)
            assert "--edit test-smile:0:2.0" in c.post("/api/command", json=view, headers=s).json()["command"]


def test_photo_upload_of_any_mode_turned_upright_by_exif(client, s):
    """A CMYK JPEG stored on its side with an EXIF orientation: read upright (a sideways face would
    not be found), in RGB, at the displayed size."""
    import skimage.data
    upright = Image.fromarray(skimage.data.astronaut()[:, 40:440])        # 400 wide, 512 tall
    stored = upright.transpose(Image.Transpose.ROTATE_90).convert("CMYK")  # 512 wide, 400 tall
    exif = Image.Exif()
    exif[0x0112] = 6                                                      # "rotate 90 CW to display"
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    r = client.post("/api/photo", content=buf.getvalue(), headers={**s, "X-Filename": "sideways.jpg"})
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (400, 512) and len(r.json()["faces"]) == 1
    shown = png(client.get("/api/photo/image", headers=s))
    assert shown.shape == (512, 400, 3)
    assert np.abs(shown.astype(int) - np.asarray(upright)).mean() < 8    # upright, not mirrored or turned


def test_images_carry_provenance_and_the_watermark(net256, tmp_path):
    """At 256 px the watermark goes in: the page's image of a seed is `stylegan generate`'s file of
    it, mark and all, and `stylegan verify` finds it; a server started with the watermark off shows
    the generator's own pixels, its metadata still saying they are synthetic."""
    from stylegan.provenance import Provenance
    nets = load_networks([str(net256)])
    view = {"network": nets[0].name, "seed": 6, "psi": 0.7}
    with TestClient(create_app(nets), base_url="http://127.0.0.1") as c:
        s = new_session(c)
        r = c.post("/api/render", json=view, headers=s)
        command = c.post("/api/command", json=view, headers=s).json()["command"]
    shown = png(r)
    np.testing.assert_array_equal(run_command(command, tmp_path), shown)
    verdict = stylegan.verify(r.content)
    assert verdict.watermark == "found" and verdict.mark.kind == "synthetic", verdict
    assert verdict.mark.network_prefix == nets[0].digest[:6] and verdict.metadata["seed"] == 6
    plain = stylegan.generate(nets[0].G, [6], psi=0.7)[0]
    assert not np.array_equal(shown, plain)
    with TestClient(create_app(nets, provenance=Provenance(watermark=False)), base_url="http://127.0.0.1") as c:
        r = c.post("/api/render", json=view, headers=new_session(c))
    np.testing.assert_array_equal(png(r), plain)
    assert stylegan.verify(r.content).metadata["synthetic"]
