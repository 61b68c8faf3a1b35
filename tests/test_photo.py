"""The photo story as library calls (stylegan.edit_photo and its steps), the generator front door, the
image convention at the inversion API and the command line's progress lines.

The faces come from a stand-in landmark detector (eyes and mouth at fixed fractions of whatever
image it is shown), so these tests need no dlib and no real photo: they check the story's plumbing,
not the landmarks (tests/test_align.py does that)."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import stylegan
from scripts.cli import main
from stylegan.inversion import project, with_noise
from stylegan.inversion.losses import PixelDistance
from stylegan.io.run_record import RunMismatchError
from stylegan.pipelines.photo import (edit_face, edit_photo, find_faces, load_projection, paste_faces, photo_settings,
                                      project_face, save_projection)
from stylegan.progress import Cancelled, Progress

from conftest import fixture_model, reference_path


def standin_detector(image: np.ndarray) -> list[np.ndarray]:
    """One face, its eyes and mouth at fixed fractions of the image (68 iBUG points, the others at the centre)."""
    h, w = image.shape[:2]
    lm = np.tile([0.5 * w, 0.55 * h], (68, 1))
    lm[36:42] = [0.40 * w, 0.45 * h]
    lm[42:48] = [0.60 * w, 0.45 * h]
    lm[48], lm[54] = [0.43 * w, 0.68 * h], [0.57 * w, 0.68 * h]
    return [lm]


@pytest.fixture(scope="module")
def photo(G):
    """A 'photo': one of the network's faces, enlarged, on a grey canvas larger than the face's crop."""
    face = np.asarray(Image.fromarray(stylegan.generate(G, [8])[0]).resize((160, 160), Image.Resampling.BICUBIC))
    canvas = np.full([300, 260, 3], 90, np.uint8)
    canvas[70:230, 50:210] = face
    return canvas


@pytest.mark.slow
def test_edit_photo_in_steps_is_edit_photo_in_one(G, photo):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    events = []
    out = edit_photo(G, photo, ["sefa:0:-2,0,2"], steps=4, paste_back=True, detector=standin_detector,
                     progress=events.append)
    assert [e.stage for e in events] == ["align"] + ["project"] * 4 + ["edit"]
    assert events[0].preview.shape == (1024, 1024, 3) and events[-1].preview.shape == (32, 3 * 32, 3)
    assert all(e.preview.shape == (32, 32, 3) for e in events[1:5] if e.preview is not None)
    assert len(out.faces) == 1 and out.latent.shape == (1, G.num_ws, G.w_dim) and out.tuned_G is None
    crops, pasted = out.crops[0], out.pasted[0]
    assert crops.shape == (3, 32, 32, 3) and pasted.shape == (3, *photo.shape)
    np.testing.assert_array_equal(crops[1], out.projection.image)        # strength 0: the reconstruction
    assert not np.array_equal(crops[0], crops[2])
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())      # G untouched

    # The same, a step at a time; strengths changed without projecting again.
    faces = find_faces(photo, detector=standin_detector)
    np.testing.assert_array_equal(faces[0].image, out.faces[0].image)
    proj = project_face(G, faces[0], steps=4)
    assert torch.equal(proj.ws, out.latent)
    np.testing.assert_array_equal(edit_face(proj, "sefa:0:-2,0,2"), crops)
    one = edit_face(proj, "sefa:0:2")
    np.testing.assert_array_equal(one[0], crops[2])
    np.testing.assert_array_equal(paste_faces(photo, proj.face, crops), pasted)
    # The edit generator is G with the projection's noise maps: its image at the latent is the projection's.
    with torch.no_grad():
        again = stylegan.images.to_uint8(with_noise(G, proj.noise).synthesis(proj.ws, noise_mode="const"))[0]
    np.testing.assert_array_equal(again, proj.projection.image)


def test_faces_picked_from_thumbnails_and_edits_together(G, photo):
    """A page's steps: faces found once as small crops, the chosen one projected as if found at full
    size; every edit applied at once is the sum of the moves (editing's edit_many), strength 0 of
    all of them the reconstruction, and edit_photo(together=True) the same image pasted back."""
    from stylegan.editing import Move, edit_many, sefa
    from stylegan.pipelines.photo import project_photo
    thumbs = find_faces(photo, detector=standin_detector, size=64)
    assert thumbs[0].image.shape == (64, 64, 3)
    events = []
    _, picked = project_photo(G, photo, faces=thumbs, steps=3, progress=events.append)
    _, found = project_photo(G, photo, detector=standin_detector, steps=3)
    assert torch.equal(picked.ws, found.ws) and events[0].preview.shape == (1024, 1024, 3)
    np.testing.assert_array_equal(picked.face.image, found.face.image)

    got = edit_face(picked, ["sefa:1@0-3:2.5", "sefa:0:-1.5"], together=True)
    want = edit_many(with_noise(G, picked.noise), picked.ws,
                     [Move(sefa(G, [0, 1, 2, 3]), 2.5, 1, [0, 1, 2, 3]), Move(sefa(G, "all"), -1.5)])
    assert got.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(edit_face(picked, ["sefa:0:0"], together=True)[0], picked.image)
    np.testing.assert_array_equal(edit_face(picked, [], together=True)[0], picked.image)

    out = edit_photo(G, photo, ["sefa:1@0-3:2.5", "sefa:0:-1.5"], projection=picked, together=True, paste_back=True)
    assert len(out.crops) == 1 and len(out.pasted) == 1
    np.testing.assert_array_equal(out.crops[0], got)
    np.testing.assert_array_equal(out.pasted[0], paste_faces(photo, picked.face, got))
    with pytest.raises(ValueError, match="one strength each"):
        edit_photo(G, photo, ["sefa:0:-1,1"], together=True, detector=lambda image: 1 / 0)


def test_bad_edits_and_faces_stop_before_the_projection(G, photo):
    def no_detector(image):
        raise AssertionError("detection ran before the edits were checked")

    with pytest.raises(ValueError, match="out of range"):
        edit_photo(G, photo, ["sefa@0-99:1"], detector=no_detector)
    with pytest.raises(ValueError, match="no such file"):
        edit_photo(G, photo, ["missing.direction:1"], detector=no_detector)
    with pytest.raises(ValueError, match="face 3 asked for, but the photo has 1 face"):
        edit_photo(G, photo, ["sefa:0:1"], face=3, detector=standin_detector)
    with pytest.raises(ValueError, match="photo is float64"):
        edit_photo(G, photo / 255, ["sefa:0:1"], detector=standin_detector)


def test_cancel_from_the_progress_callback(G, photo):
    seen = []

    def cancel(event: Progress):
        seen.append(event.stage)
        if event.stage == "project" and event.done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        edit_photo(G, photo, ["sefa:0:1"], steps=10, detector=standin_detector, progress=cancel)
    assert seen == ["align", "project", "project"]


@pytest.mark.slow
@pytest.mark.parametrize("pti", [False, True])
def test_kept_projection_comes_back_as_it_was(G, photo, tmp_path, pti):
    face = find_faces(photo, detector=standin_detector)[0]
    proj = project_face(G, face, steps=3, pti=pti, pti_steps=2, loss=PixelDistance())
    settings = photo_settings(G, photo, steps=3, loss="pixels", pti_steps=2 if pti else 0)
    assert load_projection(G, tmp_path, "me", settings) is None
    files = save_projection(proj, tmp_path, "me", settings, photo.shape)
    assert files["tuned" if pti else "noise"].exists() and not files["noise" if pti else "tuned"].exists()
    kept = load_projection(G, tmp_path, "me", settings)
    assert kept.tuned == pti and torch.equal(kept.ws, proj.ws)
    np.testing.assert_array_equal(kept.image, proj.image)
    np.testing.assert_array_equal(kept.face.image, face.image)
    np.testing.assert_array_equal(kept.face.quad, face.quad)
    np.testing.assert_array_equal(edit_face(kept, "sefa:1:-1,1"), edit_face(proj, "sefa:1:-1,1"))
    if pti:   # tuning moved the generator: its reconstruction is not the projection's
        assert not np.array_equal(proj.image, proj.projection.image)
    # Kept with other settings: refused, naming them; another photo likewise.
    with pytest.raises(RunMismatchError, match="steps=3, not 4"):
        load_projection(G, tmp_path, "me", {**settings, "steps": 4})
    with pytest.raises(RunMismatchError, match="photo="):
        load_projection(G, tmp_path, "me", photo_settings(G, photo[::-1], steps=3, loss="pixels",
                                                           pti_steps=2 if pti else 0))


def test_with_noise_is_a_copy(G):
    from stylegan.inversion.project import noise_layers
    noise = {k: torch.full_like(m.noise_const, 0.5) for k, m in noise_layers(G).items()}
    before = {k: m.noise_const.clone() for k, m in noise_layers(G).items()}
    H = with_noise(G, noise)
    assert all(torch.equal(m.noise_const, noise[k]) for k, m in noise_layers(H).items())
    assert all(torch.equal(m.noise_const, before[k]) for k, m in noise_layers(G).items())
    assert not any(p.requires_grad for p in H.parameters()) and not H.training
    with pytest.raises(ValueError, match="do not fit"):
        with_noise(G, dict(list(noise.items())[1:]))
    name = next(iter(noise))
    with pytest.raises(ValueError, match=f"noise map {name} has shape"):
        with_noise(G, {**noise, name: torch.zeros(3, 3)})


def test_projection_takes_read_only_photos_quietly(G):
    # np.asarray of a Pillow image is read-only: torch warned about it from inside the projection.
    target = np.asarray(Image.fromarray(stylegan.generate(G, [2])[0]))
    assert not target.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        project(G, target, PixelDistance(), num_steps=1, w_avg_samples=100)


def test_load_generator_names_a_file_without_one(G, tmp_path):
    D = fixture_model()["D"]
    path = stylegan.save({"D": D}, tmp_path / "d_only.stylegan")
    with pytest.raises(stylegan.LoadError, match="d_only.stylegan: holds no generator \\(only D\\)"):
        stylegan.load_generator(path)
    assert stylegan.load_generator(reference_path("sg2ada_skip.pkl")).img_resolution == 32
    Image.fromarray(stylegan.generate(G, [0])[0]).save(tmp_path / "t.png")
    out = ["--outdir", tmp_path / "o"]
    for args in (["generate", "--seeds", "0", *out], ["edit", "--seeds", "0", "--edit", "sefa:0:1", *out],
                 ["project", "--target", tmp_path / "t.png", *out],
                 ["directions", "sefa", "--out", tmp_path / "x.direction"]):
        r = CliRunner().invoke(main, [str(a) for a in args] + ["--network", str(path)])
        assert r.exit_code != 0 and "holds no generator" in r.output and "Traceback" not in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output


def test_progress_lines_outside_a_terminal():
    from scripts.common import ProgressPrinter
    log = io.StringIO()
    printer = ProgressPrinter(log)
    for i in range(1, 201):
        printer(Progress("project", i, 200, {"loss": 1 / i}, item="me", seconds=i * 0.5))
    printer(Progress("tune", 1, 2, {"dist": 0.5}, seconds=3.0))
    printer(Progress("report", 1, 1, seconds=0.1))    # a stage over in an instant: no line
    lines = log.getvalue().splitlines()
    # A line once the stage has run for 2 s, then one per 5 %, the last one complete: step, stats,
    # time left, item.
    assert [line.split()[1] for line in lines[:-1]] == ["4/200"] + [f"{10 * k}/200" for k in range(1, 21)]
    assert lines[1] == "project  10/200  loss 0.1  1m 35s left  me"
    assert "left" not in lines[-2] and lines[-1].startswith("tune     1/2  dist 0.5  3s left")


def test_align_photos_reports_progress(photo, tmp_path):
    """One Progress('align') per photo, the failed ones included (a.jpg would overwrite a.png's crop)."""
    from stylegan.pipelines.align import align_photos, find_photos
    for name in ("a.png", "a.jpg", "b.png"):
        Image.fromarray(photo).save(tmp_path / name)
    events = []
    summary = align_photos([tmp_path], tmp_path / "out", size=32, detector=standin_detector, progress=events.append)
    assert len(summary.written) == 2 and len(summary.failed) == 1
    assert [(e.stage, e.done, e.total) for e in events] == [("align", k, 3) for k in (1, 2, 3)]
    assert [e.item for e in events] == [p.name for p in find_photos([tmp_path])]


@pytest.mark.slow
def test_the_folder_story_renders_what_edit_photo_renders(G, photo, tmp_path):
    """`stylegan edit --photo` (edit_into_folder over a PhotoFolder) and edit_photo are one story:
    from the projection the folder keeps, edit_photo gives the strips' pixels exactly."""
    from stylegan.inversion.losses import PixelDistance
    from stylegan.pipelines import PhotoFolder, edit_into_folder
    from stylegan.pipelines.edit import parse_edit, read_strip
    from stylegan.provenance import Provenance
    Image.fromarray(photo).save(tmp_path / "me.png")
    edits = [parse_edit("sefa:1@0-3:-2,0,2")]
    folder = PhotoFolder(G, tmp_path / "me.png", edits, tmp_path / "out", loss="pixels", loss_factory=PixelDistance,
                         steps=3, paste_back=True, detector=standin_detector)
    unmarked = Provenance(watermark=False)          # the watermark touches the whole composite
    result = edit_into_folder(G, folder.inputs(), edits, tmp_path / "out", provenance=unmarked)
    assert [p.name for p in result.summary.written] == ["me_sefa1_rows0-3.png"] and folder.reused is None
    kept = load_projection(G, tmp_path / "out", "me", folder.settings)
    out = edit_photo(G, photo, edits, projection=kept, paste_back=True)
    np.testing.assert_array_equal(read_strip(tmp_path / "out" / "me_sefa1_rows0-3.png", 3), out.pasted[0])
    # A second run starts from the kept projection, and finds every strip there.
    again = PhotoFolder(G, tmp_path / "me.png", edits, tmp_path / "out", loss="pixels", loss_factory=PixelDistance,
                        steps=3, paste_back=True, detector=standin_detector)
    assert edit_into_folder(G, again.inputs(), edits, tmp_path / "out", provenance=unmarked).summary.skipped
    assert again.reused is None      # every strip on disk: the projection was not even read
