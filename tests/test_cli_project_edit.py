"""`stylegan project`, `edit` and `directions` end to end on fixture networks and a real photo."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

import stylegan
from stylegan.images import caption_height
from stylegan.io import load_latents
from stylegan.pipelines.edit import read_strip

from conftest import fixture_model, reference_path, run


def fixture_targets(folder, name="sg2ada_skip", seeds=(5, 6)):
    """In-domain targets: images the fixture network makes."""
    folder.mkdir(parents=True, exist_ok=True)
    G = fixture_model(name)["G_ema"]
    for s in seeds:
        img = stylegan.generate(G, [s])[0]
        Image.fromarray(img).save(folder / f"t{s}.png")
    return folder


@pytest.mark.slow
def test_project_folder_resumes(tmp_path):
    targets = fixture_targets(tmp_path / "targets")
    Image.fromarray(np.zeros([16, 24, 3], np.uint8)).save(targets / "wide.png")      # not square
    out = tmp_path / "proj"
    net = reference_path("sg2ada_skip.pkl")
    r = run("project", "--network", net, "--target", targets, "--outdir", out, "--steps", "30", "--batch", "2",
            "--no-identity")
    assert r.exit_code == 1, r.output                      # one target failed, the others are done
    assert "wide.png" in r.output and "not square" in r.output and "2 targets projected" in r.output
    for name in ("t5", "t6"):
        lat = load_latents(out / f"{name}.w.safetensors")
        assert lat.space == "w" and lat.ws.shape == (1, 64)
        w = np.load(out / f"{name}_projected_w.npz")["w"]
        assert w.shape == (1, 8, 64)                        # NVIDIA's layout: every layer
        assert np.asarray(Image.open(out / f"{name}_compare.png")).shape == (32, 64, 3)
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert sorted(r["target"] for r in rows) == ["t5", "t6"] and all(float(r["psnr"]) > 12 for r in rows)
    r = run("project", "--network", net, "--target", targets / "t5.png", "--outdir", out, "--steps", "30",
            "--no-identity")
    assert r.exit_code == 0 and "1 already done" in r.output, r.output


@pytest.mark.slow
def test_project_pti_saves_a_tuned_generator(tmp_path):
    targets = fixture_targets(tmp_path / "targets", seeds=(7,))
    out = tmp_path / "proj"
    r = run("project", "--network", reference_path("sg2ada_skip.pkl"), "--target", targets, "--outdir", out,
            "--steps", "20", "--pti", "--pti-steps", "20", "--space", "w+", "--no-identity")
    assert r.exit_code == 0, r.output
    tuned = stylegan.load(out / "t7_pti.stylegan")["G_ema"]
    ws = load_latents(out / "t7.w.safetensors").ws
    assert ws.shape == (1, 8, 64)
    with torch.no_grad():
        img = stylegan.images.to_uint8(tuned.synthesis(ws, noise_mode="const"))[0]
    np.testing.assert_array_equal(img, np.asarray(Image.open(out / "t7_pti.png")))
    row = next(csv.DictReader(open(out / "metrics.csv")))
    assert float(row["pti_psnr"]) > float(row["psnr"])
    # The comparison shows the tuned result too: target | projection | tuned.
    compare = np.asarray(Image.open(out / "t7_compare.png"))
    assert compare.shape == (32, 96, 3)
    np.testing.assert_array_equal(compare[:, 32:64], np.asarray(Image.open(out / "t7_proj.png")))
    np.testing.assert_array_equal(compare[:, 64:], img)
    # And the command says how to edit with what it made.
    assert f"--network {out}/t7_pti.stylegan --latent {out}/t7.w.safetensors" in r.output
    # The generator and latent it names do edit: strength 0 is the tuned image.
    r = run("edit", "--network", out / "t7_pti.stylegan", "--latent", out / "t7.w.safetensors", "--edit", "sefa:0:0,1",
            "--outdir", tmp_path / "e")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_strip(tmp_path / "e" / "t7_sefa0.png", 2)[0], img)


def test_project_bad_inputs(tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    r = run("project", "--network", net, "--target", tmp_path / "none", "--outdir", tmp_path / "o", "--steps", "2",
            "--no-identity")
    assert r.exit_code == 1 and "no such file" in r.output, r.output
    (tmp_path / "empty").mkdir()
    r = run("project", "--network", net, "--target", tmp_path / "empty", "--outdir", tmp_path / "o")
    assert r.exit_code != 0 and "no target images" in r.output
    targets = fixture_targets(tmp_path / "t", seeds=(1,))
    r = run("project", "--network", net, "--target", targets, "--outdir", tmp_path / "o", "--loss",
            str(tmp_path / "nope.pt"))
    assert r.exit_code != 0 and "nope.pt" in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_directions_and_edit_cli(tmp_path):
    net = reference_path("sg3_t.pkl")
    r = run("directions", "sefa", "--network", net, "--layers", "coarse", "--components", "4",
            "--out", tmp_path / "sefa.direction")
    assert r.exit_code == 0, r.output
    r = run("directions", "ganspace", "--network", net, "--samples", "2000", "--components", "3",
            "--out", tmp_path / "pca.direction")
    assert r.exit_code == 0, r.output
    r = run("directions", "show", tmp_path / "sefa.direction")
    assert r.exit_code == 0 and "sefa, 4 x w[64], ws rows 0-3" in r.output, r.output
    r = run("directions", "compare", tmp_path / "sefa.direction", tmp_path / "sefa.direction")
    assert r.exit_code == 0 and r.output.splitlines()[1:] == ["cosine       B0", "A0      +1.0000"], r.output
    out = tmp_path / "edits"
    r = run("edit", "--network", net, "--seeds", "0-1", "--edit", f"{tmp_path / 'sefa.direction'}:1:-3..3",
            "--edit", "pca.direction:0:-2,2".replace("pca.direction", str(tmp_path / "pca.direction")),
            "--values", "5", "--grid", "--outdir", out)
    assert r.exit_code == 0, r.output
    strip = np.asarray(Image.open(out / "seed0000_sefa1.png"))
    assert strip.shape == (caption_height(32) + 32, 5 * 32, 3)         # a caption band over the frames
    # The middle of -3..3 is strength 0: the unedited image.
    G = stylegan.load(net)["G_ema"]
    np.testing.assert_array_equal(read_strip(out / "seed0000_sefa1.png", 5)[2], stylegan.generate(G, [0, 1], psi=0.7)[0])
    assert np.asarray(Image.open(out / "grid_pca0.png")).shape == (caption_height(32) + 64, 64, 3)
    r = run("edit", "--network", net, "--seeds", "0", "--edit", "sefa@0-99:1", "--outdir", out)
    assert r.exit_code != 0 and "out of range" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    r = run("edit", "--network", net, "--seeds", "0", "--edit", "missing.npy:1", "--outdir", out)
    assert r.exit_code != 0 and "no such file" in r.output


def test_edit_saved_latents(tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    G = stylegan.load(net)["G_ema"]
    ws = stylegan.pipelines.map_seeds(G, [3], 0.7)
    stylegan.io.save_latents(tmp_path / "a.w.safetensors", ws, space="w+")
    r = run("edit", "--network", net, "--latent", tmp_path / "a.w.safetensors", "--edit", "sefa:0:0,2",
            "--outdir", tmp_path / "e")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(read_strip(tmp_path / "e" / "a_sefa0.png", 2)[0], stylegan.generate(G, [3], psi=0.7)[0])


@pytest.fixture
def astronaut(tmp_path):
    pytest.importorskip("dlib")
    from skimage import data
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    return tmp_path / "astronaut.png"


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.slow
def test_edit_photo_paste_back(tmp_path, astronaut):
    from stylegan.faces import AlignedFace
    from stylegan.faces.paste import paste_back
    from stylegan.inversion import with_noise
    from stylegan.pipelines.align import read_record
    net = reference_path("sg2ada_skip.pkl")
    out = tmp_path / "e"
    r = run("edit", "--network", net, "--photo", astronaut, "--edit", "sefa:0:-2,0,1,2", "--steps", "5",
            "--paste-back", "--report", "--outdir", out, "--no-watermark")   # the mark touches the whole composite
    assert r.exit_code == 0, r.output
    photo = _png(astronaut)
    assert _png(out / "astronaut_sefa0.png").shape == (caption_height(512) + 512, 4 * 512, 3)   # the whole photo per strength
    frames = dict(zip((-2, 0, 1, 2), read_strip(out / "astronaut_sefa0.png", 4)))

    # Outside the face's crop (its quad's bounding box) every frame is the photo, bit for bit.
    record = read_record(out / "astronaut_aligned.align.json")
    (x0, y0), (x1, y1) = np.floor(record["quad"].min(0)).astype(int) - 1, np.ceil(record["quad"].max(0)).astype(int) + 1
    outside = np.ones(photo.shape[:2], bool)
    outside[max(y0, 0):y1, max(x0, 0):x1] = False
    assert outside.sum() > 0.5 * outside.size
    for f in frames.values():
        np.testing.assert_array_equal(f[outside], photo[outside])

    # Strength 0 is the projection: the reconstruction the folder keeps, rendered again here from the
    # kept latent and noise maps, pasted into the photo.
    G = stylegan.load(net)["G_ema"]
    ws = load_latents(out / "astronaut.w.safetensors").ws                       # w: [1, 64]
    with np.load(out / "astronaut_noise.npz") as z:
        G_noise = with_noise(G, {k: torch.from_numpy(z[k]) for k in z.files})
    with torch.no_grad():
        proj = stylegan.images.to_uint8(G_noise.synthesis(ws[:, None].repeat(1, G.num_ws, 1), noise_mode="const"))[0]
    np.testing.assert_array_equal(proj, _png(out / "astronaut_proj.png"))
    face = AlignedFace(_png(out / "astronaut_aligned.png"), record["quad"], record["landmarks"])
    np.testing.assert_array_equal(frames[0], paste_back(photo, proj, face))

    # Inside the face the edit shows, and grows with the strength.
    inside = np.zeros(photo.shape[:2], bool)
    c = record["quad"].mean(0).astype(int)
    half = int(np.hypot(*(record["quad"][3] - record["quad"][0])) * 0.3)
    inside[c[1] - half:c[1] + half, c[0] - half:c[0] + half] = True
    change = {s: np.abs(f[inside].astype(float) - frames[0][inside]).mean() for s, f in frames.items()}
    assert change[0] == 0 and 1.0 < change[1] < change[2], change
    assert change[-2] > 1.0 and not np.array_equal(frames[-2], frames[2])

    rows = list(csv.DictReader(open(out / "report.csv")))
    assert len(rows) == 4 and "identity_distance" in rows[0] and "d_smile" in rows[0]
    # Measured inside the face's own region only: the fixture's 32 px result is no face for dlib, and
    # a face found elsewhere in the photo (a false detection on the suit) must not stand in for it.
    assert all(r["identity_to_photo"] == "" and r["identity_distance"] == "" and r["d_smile"] == "" for r in rows)
    # Blank columns say why, once each.
    assert r.output.count("attribute columns blank in 4 of 4 rows") == 1, r.output
    assert r.output.count("identity_to_photo blank in 4 of 4 rows") == 1, r.output


@pytest.mark.slow
def test_edit_photo_is_align_then_project_and_is_kept(tmp_path, astronaut):
    net = reference_path("sg2ada_skip.pkl")
    out = tmp_path / "e"
    r = run("edit", "--network", net, "--photo", astronaut, "--edit", "sefa:1:-1,0,1", "--steps", "6", "--seed", "9",
            "--outdir", out)
    assert r.exit_code == 0, r.output
    assert r.output.count("aligned at FFHQ's 1024 px and brought to the network's 32 px") == 1, r.output
    # The same target and loss as `align` + `project` with the same settings: the same latent, bit for bit.
    r = run("align", astronaut, "--outdir", tmp_path / "aligned")
    assert r.exit_code == 0, r.output
    np.testing.assert_array_equal(_png(tmp_path / "aligned" / "astronaut.png"), _png(out / "astronaut_aligned.png"))
    r = run("project", "--network", net, "--target", tmp_path / "aligned", "--steps", "6", "--seed", "9",
            "--outdir", tmp_path / "proj")
    assert r.exit_code == 0, r.output
    # Said, not silent: the resize to the network's size, and why metrics.csv's identity is blank.
    assert "targets resized to the network's 32 px (Lanczos): 1 from 1024 px" in r.output
    assert next(csv.DictReader(open(tmp_path / "proj" / "metrics.csv")))["identity"] == ""
    assert r.output.count("identity is blank for 1 of 1 targets: dlib found no face") == 1, r.output
    assert torch.equal(load_latents(tmp_path / "proj" / "astronaut.w.safetensors").ws,
                       load_latents(out / "astronaut.w.safetensors").ws)
    np.testing.assert_array_equal(_png(tmp_path / "proj" / "astronaut_proj.png"), _png(out / "astronaut_proj.png"))

    # A second edit starts from what the first one kept: nothing is projected again.
    before = (out / "astronaut.w.safetensors").stat().st_mtime_ns
    r = run("edit", "--network", net, "--photo", astronaut, "--edit", "sefa:2:0,3", "--steps", "6", "--seed", "9",
            "--outdir", out)
    assert r.exit_code == 0 and "started from the projection kept in" in r.output and "project " not in r.output
    assert (out / "astronaut.w.safetensors").stat().st_mtime_ns == before
    np.testing.assert_array_equal(read_strip(out / "astronaut_sefa2.png", 2)[0], _png(out / "astronaut_proj.png"))
    # Other settings: one line naming them, nothing replaced.
    r = run("edit", "--network", net, "--photo", astronaut, "--edit", "sefa:3:1", "--steps", "7", "--outdir", out)
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1, r.output
    assert "--steps 6, not 7" in r.output and "--seed 9, not 303" in r.output and "--overwrite" in r.output


def test_edit_options_keep_one_meaning(tmp_path):
    net = reference_path("sg2ada_skip.pkl")
    # --steps is the projection's, as in `project`: with seeds it is refused, pointing at --values.
    r = run("edit", "--network", net, "--seeds", "0", "--edit", "sefa:0:-1..1", "--steps", "5", "--outdir", tmp_path)
    assert r.exit_code != 0 and "--values" in r.output, r.output
    # A bad edit stops a photo run before any alignment or projection (no photo needed to see it).
    r = run("edit", "--network", net, "--photo", tmp_path / "none.jpg", "--edit", "sefa:0:x", "--outdir", tmp_path)
    assert r.exit_code != 0 and "bad strengths" in r.output


@pytest.mark.slow
def test_edit_photo_keeps_the_projection_when_editing_is_interrupted(tmp_path, astronaut, monkeypatch):
    from stylegan.pipelines import edit as pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    net = reference_path("sg2ada_skip.pkl")
    args = ("edit", "--network", net, "--photo", astronaut, "--edit", "sefa:0:1", "--steps", "3", "--outdir",
            tmp_path / "e")
    with monkeypatch.context() as m:
        m.setattr(pipeline, "edit", interrupted)       # the strips' rendering, after the projection
        r = run(*args)
    assert r.exit_code != 0 and not (tmp_path / "e" / "astronaut_sefa0.png").exists()
    assert (tmp_path / "e" / "astronaut.w.safetensors").exists()
    r = run(*args)
    assert r.exit_code == 0 and "started from the projection kept in" in r.output, r.output


def test_edit_together_and_pose(tmp_path):
    """--together applies every edit at once (the sum of the moves, one image per seed); --class
    and --translate/--rotate reach the conditional and StyleGAN3 networks as in `generate`."""
    from stylegan.editing import Move, edit_many, sefa
    from stylegan.networks.stylegan3 import pose_transform
    net = reference_path("sg2ada_skip.pkl")
    G = stylegan.load(net)["G_ema"]
    r = run("edit", "--network", net, "--seeds", "3", "--trunc", "0.5", "--edit", "sefa:1@0-3:2.5",
            "--edit", "sefa:0:-1.5", "--together", "--outdir", tmp_path / "t")
    assert r.exit_code == 0, r.output
    got = np.asarray(Image.open(tmp_path / "t" / "seed0003_edits.png"))
    ws = stylegan.pipelines.map_seeds(G, [3], 0.5)
    want = edit_many(G, ws, [Move(sefa(G, [0, 1, 2, 3]), 2.5, 1, [0, 1, 2, 3]), Move(sefa(G, "all"), -1.5)])[0]
    np.testing.assert_array_equal(got, want)
    r = run("edit", "--network", net, "--seeds", "3", "--edit", "sefa:-1,1", "--together", "--outdir", tmp_path / "t")
    assert r.exit_code != 0 and "one strength each" in r.output
    r = run("edit", "--network", net, "--seeds", "3", "--edit", "sefa:1", "--together", "--grid", "--outdir", tmp_path)
    assert r.exit_code != 0 and "--together" in r.output

    cond = reference_path("sg2ada_resnet_cond.pkl")
    r = run("edit", "--network", cond, "--seeds", "2", "--class", "4", "--edit", "sefa:0", "--together",
            "--outdir", tmp_path / "c")
    assert r.exit_code == 0, r.output
    Gc = stylegan.load(cond)["G_ema"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "c" / "seed0002_edits.png")),
                                  stylegan.generate(Gc, [2], psi=0.7, class_idx=4)[0])
    sg3 = reference_path("sg3_t.pkl")
    for cmd in ("generate", "edit"):
        extra = ["--edit", "sefa:0", "--together"] if cmd == "edit" else []
        r = run(cmd, "--network", sg3, "--seeds", "1", "--trunc", "0.7", "--translate", "0.3,-0.2", "--rotate", "15",
                *extra, "--outdir", tmp_path / cmd)
        assert r.exit_code == 0, r.output
    G3 = stylegan.load(sg3)["G_ema"]
    want = stylegan.generate(G3, [1], psi=0.7, transform=pose_transform((0.3, -0.2), 15))[0]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "generate" / "seed0001.png")), want)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "edit" / "seed0001_edits.png")), want)
    r = run("generate", "--network", net, "--seeds", "1", "--rotate", "15", "--outdir", tmp_path / "g2")
    assert r.exit_code != 0 and "needs a StyleGAN3 generator" in r.output
