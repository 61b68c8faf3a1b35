"""`stylegan dataset` / `stylegan.data.make_dataset`: NVIDIA's dataset_tool pixels and layout (fixture),
photos as people have them, labels, alignment, and nothing lost to kill -9, a full disk or a bad file."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import PIL
import pytest
from click.testing import CliRunner
from PIL import Image

from scripts.cli import main
from stylegan.data import ImageDataset, make_dataset
from stylegan.data.make import archive_name
from stylegan.data.zipwriter import journal_path, partial_path
from stylegan.faces.photo import read_photo
from stylegan.data.transforms import center_crop
from stylegan.progress import Cancelled

from conftest import real_photos, synthetic_landmarks

REPO = Path(__file__).resolve().parents[1]
PARITY = Path(__file__).parent / "data" / "dataset_tool_parity.npz"


def zip_images(path) -> tuple[list[str], np.ndarray]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        return names, [np.array(Image.open(io.BytesIO(z.read(n)))) for n in names if n.endswith(".png")]


def random_photo(w, h, seed, mode="RGB") -> Image.Image:
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[:h, :w]
    a = np.stack([(xx * 255 // max(1, w - 1)), (yy * 255 // max(1, h - 1)), rs.randint(0, 256, [h, w])], 2)
    return Image.fromarray(a.astype(np.uint8)).convert(mode)


def run_cli(*args):
    result = CliRunner().invoke(main, ["dataset", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


# ----------------------------------------------------------------------------------------------
# NVIDIA's dataset_tool.py: the same archive, pixel for pixel (tests/data/dataset_tool_parity.md).

PARITY_CASES = {
    "center_crop": ("rgb", dict(transform="center-crop", resolution=32)),
    "center_crop_zip": ("rgb.zip", dict(transform="center-crop", resolution=32)),
    "center_crop_wide": ("rgb", dict(transform="center-crop-wide", resolution=(32, 24))),
    "center_crop_box": ("rgb", dict(transform="center-crop", resolution=32, resize_filter="box")),
    "center_crop_sg2ada": ("rgb", dict(transform="center-crop", resolution=32)),
    "scale": ("square", dict(resolution=32)),
    "scale_box": ("square", dict(resolution=32, resize_filter="box")),
    "gray_scale": ("gray", dict(resolution=32)),
    "native": ("native", {}),
}


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    """The fixture's inputs rebuilt as files: folders of PNGs (lossless) and the rgb set as a zip."""
    root = tmp_path_factory.mktemp("parity")
    with np.load(PARITY, allow_pickle=False) as npz:
        fx = {k: npz[k] for k in npz.files}
    for key, a in fx.items():
        if key.startswith("input/") and key.endswith(".png"):
            path = root / key[len("input/"):]
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(path)
    (root / "rgb" / "dataset.json").write_text(str(fx["input/rgb/dataset.json"]))
    with zipfile.ZipFile(root / "rgb.zip", "w") as z:
        for p in sorted((root / "rgb").rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(root / "rgb").as_posix())
    return root, fx


@pytest.mark.parametrize("case", list(PARITY_CASES))
def test_nvidia_dataset_tool_parity(parity, tmp_path, case):
    root, fx = parity
    source, kwargs = PARITY_CASES[case]
    out = tmp_path / "ours.zip"
    make_dataset(root / source, out, workers=2 if case == "center_crop_zip" else 1, **kwargs)
    layout, images = zip_images(out)
    assert layout == json.loads(str(fx[f"{case}/layout"]))      # names, numbering gaps, dataset.json last
    ref = fx[f"{case}/images"]
    assert len(images) == len(ref)
    for k, (ours, theirs) in enumerate(zip(images, ref)):
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{case} image {k}")
    with zipfile.ZipFile(out) as z:
        assert z.read("dataset.json").decode() == str(fx[f"{case}/dataset_json"])
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
        if PIL.__version__ == str(fx["pillow_version"]):     # same encoder: the same PNG bytes
            digests = [hashlib.sha256(z.read(n)).hexdigest() for n in layout if n.endswith(".png")]
            assert digests == json.loads(str(fx[f"{case}/png_sha256"]))
    # And the reader training uses sees them in that order, with their labels.
    ds = ImageDataset(out, use_labels=True)
    np.testing.assert_array_equal(ds[len(ds) - 1][0].reshape(ref[-1].shape), ref[-1])


# ----------------------------------------------------------------------------------------------
# Photos as people have them.

def test_modes_exif_and_mixed_sizes(tmp_path):
    src = tmp_path / "photos"
    (src / "deep" / "er").mkdir(parents=True)
    base = random_photo(90, 60, 0)
    base.save(src / "a_rgb.png")
    random_photo(70, 50, 1, "RGBA").save(src / "b_rgba.png")
    random_photo(64, 80, 2, "P").save(src / "c_palette.gif")
    random_photo(50, 50, 3, "CMYK").save(src / "deep" / "d_cmyk.tif")
    Image.fromarray((np.asarray(random_photo(40, 48, 4, "L")).astype(np.uint16) * 257)).save(src / "deep" / "er" / "e16.png")
    # The same picture stored turned a quarter (lossless), with EXIF saying how to turn it back.
    turned = base.transpose(Image.Transpose.ROTATE_90)
    exif = turned.getexif()
    exif[0x0112] = 6
    turned.save(src / "f_turned.png", exif=exif)
    # What a zip made on a Mac and a folder of photos also hold: no pictures, counted, not errors.
    (src / "__MACOSX").mkdir()
    (src / "__MACOSX" / "._a_rgb.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (src / "notes.txt").write_text("taken in 2019")

    summary = make_dataset(src, tmp_path / "d.zip", transform="center-crop", resolution=32, workers=2)
    assert summary.images == 6 and summary.channels == 3 and not summary.left_out
    assert summary.ignored == 1 and summary.other_files == 1
    names = ["a_rgb.png", "b_rgba.png", "c_palette.gif", "deep/d_cmyk.tif", "deep/er/e16.png", "f_turned.png"]
    assert list(summary.origins.values()) == names        # a folder's order: sorted path parts
    _, images = zip_images(tmp_path / "d.zip")
    for name, img in zip(names, images):
        np.testing.assert_array_equal(img, center_crop(read_photo(src / name), 32), err_msg=name)
    np.testing.assert_array_equal(images[-1], images[0])  # upright again: the very same pixels
    assert images[1][0, 0].tolist() != [0, 0, 0]           # transparency is white, not black


def test_grey_photos_make_a_grey_set(tmp_path):
    for k in range(3):
        random_photo(40, 40, k, "L").save(tmp_path / f"{k}.png")
    grey = make_dataset(tmp_path, tmp_path / "g.zip", resolution=32, workers=1)
    rgb = make_dataset(tmp_path, tmp_path / "c.zip", resolution=32, rgb=True, workers=1)
    assert grey.channels == 1 and rgb.channels == 3
    g, c = ImageDataset(tmp_path / "g.zip"), ImageDataset(tmp_path / "c.zip")
    assert g.image_shape == [1, 32, 32] and c.image_shape == [3, 32, 32]
    np.testing.assert_array_equal(np.repeat(g[1][0], 3, axis=2), c[1][0])


# ----------------------------------------------------------------------------------------------
# Labels.

def test_csv_labels_by_class_name(tmp_path):
    src = tmp_path / "pets"
    for k, (folder, name) in enumerate([("cats", "a.jpg"), ("dogs", "b.jpg"), ("cats", "c.jpg"), ("dogs", "d.jpg")]):
        (src / folder).mkdir(parents=True, exist_ok=True)
        random_photo(40, 36, k).save(src / folder / name)
    csv = tmp_path / "labels.csv"
    # A header, a path inside the source, bare names (unique), a BOM as spreadsheets write it.
    csv.write_text("\ufefffile,class\ncats/a.jpg,cat\nb.jpg,dog\nc.jpg,cat\ndogs/d.jpg,dog\n", encoding="utf-8")
    summary = make_dataset(src, tmp_path / "p.zip", transform="center-crop", resolution=16, labels=csv, workers=1)
    assert summary.class_names == ["cat", "dog"] and summary.label_dim == 2
    ds = ImageDataset(tmp_path / "p.zip", use_labels=True)
    assert [ds.get_label(i).argmax() for i in range(4)] == [0, 0, 1, 1]   # cats/a, cats/c, dogs/b, dogs/d


@pytest.mark.parametrize("rows, words", [
    ("a.png,0\n", "no label for 1 of the 2 images"),
    ("a.png,0\nb.png,1\nzz.png,1\n", "labels 1 files that are not images"),
    ("a.png,0\nb.png\n", "expected file,class"),
])
def test_labels_that_do_not_match_are_one_line(tmp_path, rows, words):
    for k in range(2):
        random_photo(16, 16, k).save(tmp_path / f"{'ab'[k]}.png")
    (tmp_path / "l.csv").write_text(rows)
    result = run_cli(tmp_path, "--out", tmp_path / "d.zip", "--labels", tmp_path / "l.csv", "--workers", "1")
    assert result.exit_code == 1 and words in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "d.zip").exists()


# ----------------------------------------------------------------------------------------------
# Bad inputs: one line, nothing written.

def _bad_source(tmp_path, case) -> tuple[Path, list]:
    src = tmp_path / "src"
    src.mkdir()
    args = []
    if case == "empty":
        (src / "notes.txt").write_text("no images here")
    elif case == "mixed sizes":
        random_photo(32, 32, 0).save(src / "a.png")
        random_photo(64, 64, 1).save(src / "b.png")
    elif case == "not a power of two":
        random_photo(48, 48, 0).save(src / "a.png")
    elif case == "not square":
        random_photo(64, 32, 0).save(src / "a.png")
    elif case in ("corrupt zip member", "skip corrupt zip member"):
        buf = io.BytesIO()
        random_photo(32, 32, 0).save(buf, format="png")
        png = buf.getvalue()
        src = tmp_path / "src.zip"
        with zipfile.ZipFile(src, "w") as z:
            z.writestr("a.png", png)
            z.writestr("b.png", png)
        data = bytearray(src.read_bytes())
        at = data.rindex(png) + len(png) // 2        # a byte inside b.png's pixels: its CRC no longer holds
        data[at] ^= 0xFF
        src.write_bytes(bytes(data))
        args = ["--skip-bad"] if case.startswith("skip") else []
    elif case == "truncated":
        random_photo(64, 64, 0).save(src / "a.jpg")
        random_photo(64, 64, 1).save(src / "b.jpg")
        data = (src / "b.jpg").read_bytes()
        sos = data.index(b"\xff\xda")                 # the header ends where the scan data begins
        (src / "b.jpg").write_bytes(data[:(sos + len(data)) // 2])   # its header whole, its pixels cut
    elif case == "not an image":
        random_photo(32, 32, 0).save(src / "a.png")
        (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    elif case == "resolution":
        random_photo(32, 32, 0).save(src / "a.png")
        args = ["--resolution", "100"]
    elif case == "all faces":
        random_photo(32, 32, 0).save(src / "a.png")
        args = ["--all-faces"]
    return src, args


@pytest.mark.parametrize("case, words", [
    ("empty", "no images found"),
    ("mixed sizes", "images of 2 sizes (1 is 32x32 (e.g. a.png), 1 is 64x64 (e.g. b.png)): pass --transform"),
    ("not a power of two", "48x48, not a power of two: pass --resolution N"),
    ("not square", "64x32, not square: pass --transform center-crop"),
    ("corrupt zip member", "b.png: corrupt zip member (Bad CRC-32"),
    ("truncated", "b.jpg: unreadable image"),
    ("not an image", "b.png: not an image Pillow can read"),
    ("resolution", "--resolution 100: the networks need a power of two"),
    ("all faces", "--all-faces keeps every face found by alignment: pass --align"),
])
def test_bad_inputs_are_one_line(tmp_path, case, words):
    src, args = _bad_source(tmp_path, case)
    out = tmp_path / "d.zip"
    result = run_cli(src, "--out", out, "--workers", "1", *args)
    assert result.exit_code == 1, result.output
    assert words in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    if case in ("truncated", "not an image", "corrupt zip member"):
        assert "--skip-bad" in result.output
    assert not out.exists()
    # Refused before any work (a small member is read to its end, CRC and all, by its header's
    # read), except a file whose header reads well and whose pixels do not: the run stops at it,
    # its work so far kept for the rerun.
    assert partial_path(out).exists() == (case == "truncated")


def test_skip_bad_lists_what_it_left_out(tmp_path):
    src, args = _bad_source(tmp_path, "skip corrupt zip member")
    result = run_cli(src, "--out", tmp_path / "d.zip", "--workers", "1", *args)
    assert result.exit_code == 0, result.output
    assert "left out: 1 unreadable" in result.output and "b.png: corrupt zip member" in result.output
    report = json.loads((tmp_path / "d.zip.report.json").read_text())
    assert list(report["left_out"]) == ["b.png"] and report["origins"] == {archive_name(0): "a.png"}
    assert len(ImageDataset(tmp_path / "d.zip")) == 1


def test_outputs_never_overwrite_silently(tmp_path):
    random_photo(16, 16, 0).save(tmp_path / "a.png")
    out = tmp_path / "d.zip"
    out.write_bytes(b"precious")
    result = run_cli(tmp_path, "--out", out, "--workers", "1")
    assert result.exit_code == 1 and "exists: pass --overwrite" in result.output and out.read_bytes() == b"precious"
    assert run_cli(tmp_path, "--out", out, "--workers", "1", "--overwrite").exit_code == 0
    assert len(ImageDataset(out)) == 1


# ----------------------------------------------------------------------------------------------
# Interruptions: Ctrl-C, kill -9, a full disk. A resumed run writes the uninterrupted run's bytes.

@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    src = tmp_path_factory.mktemp("photos")
    for k in range(12):
        random_photo(40 + 3 * k, 30 + 2 * k, k).save(src / f"p{k:02d}.jpg", quality=90)
    reference = src.parent / "reference.zip"
    make_dataset(src, reference, transform="center-crop", resolution=16, workers=1)
    return src, reference.read_bytes()


def test_cancelled_run_resumes_and_other_settings_are_refused(photos, tmp_path):
    src, reference = photos
    out = tmp_path / "d.zip"

    def stop_after_5(p):
        if p.stage == "dataset" and p.done == 5:
            raise Cancelled()
    with pytest.raises(Cancelled):
        make_dataset(src, out, transform="center-crop", resolution=16, workers=2, progress=stop_after_5)
    assert not out.exists() and partial_path(out).exists()
    result = run_cli(src, "--out", out, "--transform", "center-crop", "--resolution", "32", "--workers", "1")
    assert result.exit_code == 1 and "made with --resolution 16x16, not 32x32" in result.output
    summary = make_dataset(src, out, transform="center-crop", resolution=16, workers=1)
    assert summary.resumed == 5 and out.read_bytes() == reference
    assert not partial_path(out).exists() and not journal_path(out).exists()


def test_kill_9_leaves_nothing_a_resume_trusts(photos, tmp_path):
    src, reference = photos
    out = tmp_path / "d.zip"
    # Every file journalled as it finishes; the process kills itself outright after the 7th.
    code = f"""
import os, signal
from stylegan.data import make_dataset, zipwriter
zipwriter.COMMIT_EVERY_S = 0.0
def die(p):
    if p.stage == "dataset" and p.done == 7:
        os.kill(os.getpid(), signal.SIGKILL)
make_dataset({str(src)!r}, {str(out)!r}, transform="center-crop", resolution=16, workers=2, progress=die)
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not out.exists()
    # What a kill mid-write leaves after the last journalled file: half an entry, half a journal line.
    with open(partial_path(out), "ab") as f:
        f.write(b"PK\x03\x04" + bytes(1 << 16))      # longer than all that is still to come
    with open(journal_path(out), "ab") as f:
        f.write(b'{"i": 7, "name": "p07.j')
    summary = make_dataset(src, out, transform="center-crop", resolution=16, workers=2)
    assert summary.resumed == 7 and out.read_bytes() == reference


def test_full_disk_is_one_line_and_resumes(photos, tmp_path):
    src, reference = photos
    out = tmp_path / "d.zip"
    # The file-size limit makes the kernel refuse a write mid-entry, as a full disk does.
    limit = len(reference) // 2
    code = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from stylegan.data import zipwriter
zipwriter.COMMIT_EVERY_S = 0.0
from scripts.cli import main
sys.argv = ["stylegan", "dataset", {str(src)!r}, "--out", {str(out)!r}, "--transform", "center-crop",
            "--resolution", "16", "--workers", "1"]
main()
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, timeout=120, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "File too large after" in lines[0] and "rerun to continue" in lines[0]
    assert not out.exists()
    summary = make_dataset(src, out, transform="center-crop", resolution=16, workers=1)
    assert 0 < summary.resumed < 12 and out.read_bytes() == reference


# ----------------------------------------------------------------------------------------------
# Alignment: every face, numbering, faceless photos in the report.

class TwoFacesOnWide:
    """A stand-in detector: two faces on wide photos, one on square ones, none on tall ones."""

    def __call__(self, image):
        h, w = image.shape[:2]
        faces = [synthetic_landmarks((w * 0.35, h * 0.4), (w * 0.65, h * 0.4), (w * 0.4, h * 0.7), (w * 0.6, h * 0.7))]
        return faces * 2 if w > h else faces if w == h else []


def test_all_faces_numbering_and_the_no_face_report(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    random_photo(120, 80, 0).save(src / "a_wide.png")
    random_photo(60, 100, 1).save(src / "b_tall.png")
    random_photo(90, 90, 2).save(src / "c_square.png")
    summary = make_dataset(src, tmp_path / "f.zip", align=True, all_faces=True, resolution=16,
                           detector=TwoFacesOnWide(), workers=1)
    # Numbers follow the photos: two faces take two, a photo without a face leaves its number unused.
    assert summary.origins == {archive_name(0): "a_wide.png", archive_name(1): "a_wide.png",
                               archive_name(3): "c_square.png"}
    assert summary.left_out == {"b_tall.png": "no face found"} and summary.left_out_kinds == {"no face": 1}


class DiesOnTall(TwoFacesOnWide):
    """Kills the worker process it runs in at a tall photo while $DIE is set (as the OOM killer would)."""

    def __call__(self, image):
        if os.environ.get("DIE") and image.shape[0] > image.shape[1]:
            os._exit(1)
        return super().__call__(image)


def test_a_dead_worker_is_one_line_and_the_run_resumes(tmp_path, monkeypatch):
    src = tmp_path / "photos"
    src.mkdir()
    random_photo(80, 80, 0).save(src / "a_square.png")
    random_photo(60, 100, 1).save(src / "b_tall.png")
    out = tmp_path / "f.zip"
    monkeypatch.setenv("DIE", "1")
    with pytest.raises(ValueError, match="a worker process died") as e:
        make_dataset(src, out, align=True, resolution=16, detector=DiesOnTall(), workers=2)
    assert "\n" not in str(e.value) and not out.exists()
    monkeypatch.delenv("DIE")
    # Whatever finished before the death (nothing, when the other worker was mid-photo) is kept.
    summary = make_dataset(src, out, align=True, resolution=16, detector=DiesOnTall(), workers=2)
    assert summary.origins == {archive_name(0): "a_square.png"}
    assert summary.left_out == {"b_tall.png": "no face found"}


def test_align_real_photos(detector, tmp_path):
    from stylegan.faces import align_face
    hopper = real_photos()["grace_hopper"]
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(hopper).save(src / "sub" / "hopper.png")
    turned = Image.fromarray(hopper).transpose(Image.Transpose.ROTATE_270)
    exif = turned.getexif()
    exif[0x0112] = 8                                   # "turn 90 degrees counter-clockwise to view"
    turned.save(src / "sub" / "hopper_turned.png", exif=exif)
    Image.fromarray(np.full([120, 160, 3], 90, np.uint8)).save(src / "wall.jpg")

    # Two worker processes, each loading dlib's model for itself.
    result = run_cli(src, "--out", tmp_path / "faces.zip", "--align", "--resolution", "64", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert "2 images 64x64 RGB, from 3 files" in result.output and "wall.jpg: no face found" in result.output
    _, images = zip_images(tmp_path / "faces.zip")
    np.testing.assert_array_equal(images[0], align_face(hopper, detector, size=64)[0].image)
    np.testing.assert_array_equal(images[1], images[0])   # EXIF-turned: the same photo, the same crop


# ----------------------------------------------------------------------------------------------
# Progress: one event type from the library, a log line per stage from the command.

def test_progress_events_and_log_lines(photos, tmp_path):
    from scripts.common import ProgressPrinter
    src, _ = photos
    events = []
    make_dataset(src, tmp_path / "d.zip", transform="center-crop", resolution=16, workers=1, progress=events.append)
    assert [(e.stage, e.done) for e in events] == [("scan", k) for k in range(1, 13)] + [("dataset", k) for k in range(1, 13)]
    assert events[-1].total == 12 and events[-1].stats == {"images": 12, "left_out": 0}
    # In a log: a line per stage at its first event and at each quarter, named as the command names it.
    log = io.StringIO()
    with ProgressPrinter(log, lines=4, labels={"dataset": "images"}, quiet=0) as show:
        for e in events:
            show(e)
    log = log.getvalue().splitlines()
    assert [line.split()[:2] for line in log] == [["scan", f"{k}/12"] for k in (1, 3, 6, 9, 12)] + \
        [["images", f"{k}/12"] for k in (1, 3, 6, 9, 12)]
    assert log[-1] == "images   12/12  images 12  left out 0  p11.jpg"
