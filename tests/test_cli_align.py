"""`stylegan align` end to end on real photos that ship in packages."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from scripts.cli import main
from stylegan.pipelines.align import read_record

pytest.importorskip("dlib")


@pytest.fixture()
def photos(tmp_path):
    from skimage import data
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(np.full([100, 120, 3], 80, np.uint8)).save(folder / "wall.jpg")   # no face
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


@pytest.mark.slow
def test_align_folder(tmp_path, photos):
    out = tmp_path / "aligned"
    r = CliRunner().invoke(main, ["align", str(photos), "--outdir", str(out), "--size", "64"])
    assert r.exit_code == 1, r.output                   # some photos failed, the others were done
    assert "wall.jpg: no face found" in r.output
    assert "broken.jpg: not an image" in r.output
    assert "1 faces written" in r.output
    crop = np.asarray(Image.open(out / "astronaut.png"))
    assert crop.shape == (64, 64, 3)
    record = read_record(out / "astronaut.align.json")
    assert record["size"] == 64 and record["source_size"] == [512, 512]
    side = np.hypot(*(record["quad"][3] - record["quad"][0]))
    assert 100 < side < 300                             # the face, not the whole photo
    assert "Traceback" not in r.output

    # A rerun skips what is done; --overwrite redoes it.
    r = CliRunner().invoke(main, ["align", str(photos / "astronaut.png"), "--outdir", str(out), "--size", "64"])
    assert r.exit_code == 0 and "1 already present" in r.output, r.output
    r = CliRunner().invoke(main, ["align", str(photos / "astronaut.png"), "--outdir", str(out), "--size", "64",
                                  "--overwrite"])
    assert r.exit_code == 0 and "1 faces written" in r.output, r.output
    assert read_record(out / "astronaut.align.json")["refined"] is False

    # --refine: the landmarks found again in a first crop; the record says so, the quad moves a little.
    r = CliRunner().invoke(main, ["align", str(photos / "astronaut.png"), "--outdir", str(out), "--size", "64",
                                  "--overwrite", "--refine"])
    assert r.exit_code == 0 and "1 faces written" in r.output, r.output
    refined = read_record(out / "astronaut.align.json")
    assert refined["refined"] is True
    assert 0 < np.abs(refined["quad"] - record["quad"]).max() < 0.05 * side


def test_align_bad_inputs(tmp_path, photos):
    r = CliRunner().invoke(main, ["align", str(tmp_path / "empty_dir_missing"), "--outdir", str(tmp_path / "o")])
    assert r.exit_code == 1 and "no such file" in r.output, r.output
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["align", str(tmp_path / "empty"), "--outdir", str(tmp_path / "o")])
    assert r.exit_code != 0 and "no photos found" in r.output
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(main, ["align", str(photos), "--outdir", str(tmp_path / "afile" / "sub")])
    assert r.exit_code != 0 and len(r.output.strip().splitlines()) == 1, r.output


def test_align_takes_the_size_from_the_network(tmp_path, photos):
    from conftest import reference_path
    astronaut = str(photos / "astronaut.png")
    r = CliRunner().invoke(main, ["align", astronaut, "--outdir", str(tmp_path / "a"),
                                  "--network", str(reference_path("sg2ada_skip.pkl"))])
    assert r.exit_code == 0 and "1024" not in r.output, r.output
    assert np.asarray(Image.open(tmp_path / "a" / "astronaut.png")).shape == (32, 32, 3)   # the fixture's size
    # A registry name says its resolution without a download.
    r = CliRunner().invoke(main, ["align", astronaut, "--outdir", str(tmp_path / "b"), "--size", "64",
                                  "--network", "stylegan3-t-ffhqu-256"])
    assert r.exit_code != 0 and "--size 64 is not --network's resolution (256)" in r.output, r.output
    assert not (tmp_path / "b").exists()
    # Without either, the crop is FFHQ's 1024 px, and the command says so once.
    r = CliRunner().invoke(main, ["align", astronaut, "--outdir", str(tmp_path / "c")])
    assert r.exit_code == 0 and r.output.count("crops are FFHQ's 1024 px") == 1, r.output
    assert np.asarray(Image.open(tmp_path / "c" / "astronaut.png")).shape == (1024, 1024, 3)
