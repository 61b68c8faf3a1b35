"""`stylegan project`, `edit` and `directions` end to end on fixture networks and a real photo."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from scripts.cli import main
from stylegan.io import load_latents

from conftest import reference_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fixture_targets(folder, name="sg2ada_skip", seeds=(5, 6)):
    """In-domain targets: images the fixture network makes."""
    folder.mkdir(parents=True, exist_ok=True)
    G = stylegan.load(reference_path(f"{name}.pkl"))["G_ema"]
    for s in seeds:
        img = stylegan.generate(G, [s])[0]
        Image.fromarray(img).save(folder / f"t{s}.png")
    return folder


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
    assert r.exit_code == 0 and r.output.strip() == "+1.0000"
    out = tmp_path / "edits"
    r = run("edit", "--network", net, "--seeds", "0-1", "--edit", f"{tmp_path / 'sefa.direction'}:1:-3..3",
            "--edit", "pca.direction:0:-2,2".replace("pca.direction", str(tmp_path / "pca.direction")),
            "--steps", "5", "--grid", "--outdir", out)
    assert r.exit_code == 0, r.output
    strip = np.asarray(Image.open(out / "seed0000_sefa1.png"))
    assert strip.shape == (32, 5 * 32, 3)
    # The middle of -3..3 is strength 0: the unedited image.
    G = stylegan.load(net)["G_ema"]
    np.testing.assert_array_equal(strip[:, 64:96], stylegan.generate(G, [0, 1], psi=0.7)[0])
    assert np.asarray(Image.open(out / "grid_pca0.png")).shape == (64, 64, 3)
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
    strip = np.asarray(Image.open(tmp_path / "e" / "a_sefa0.png"))
    np.testing.assert_array_equal(strip[:, :32], stylegan.generate(G, [3], psi=0.7)[0])


def test_edit_photo_paste_back(tmp_path):
    pytest.importorskip("dlib")
    from skimage import data
    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    out = tmp_path / "e"
    r = run("edit", "--network", reference_path("sg2ada_skip.pkl"), "--photo", tmp_path / "astronaut.png",
            "--edit", "sefa:0:-2,2", "--project-steps", "5", "--paste-back", "--report", "--outdir", out)
    assert r.exit_code == 0, r.output
    strip = np.asarray(Image.open(out / "astronaut_sefa0.png"))
    assert strip.shape == (512, 2 * 512, 3)                # the whole photo, twice
    photo = data.astronaut()
    # Far from the face, the pasted-back photo is the photo itself.
    np.testing.assert_array_equal(strip[450:, :60], photo[450:, :60])
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert len(rows) == 2 and "identity_distance" in rows[0] and "d_smile" in rows[0]
    # Measured inside the face's own region only: the fixture's 32 px result is no face for dlib, and
    # a face found elsewhere in the photo (a false detection on the suit) must not stand in for it.
    assert all(r["identity_to_photo"] == "" and r["identity_distance"] == "" for r in rows)


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
