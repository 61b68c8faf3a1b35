"""Provenance: every image-writing command's outputs carry it, `stylegan verify` reads it back, the
watermark survives what the README says it survives, C2PA signatures catch a changed byte."""
from __future__ import annotations

import datetime
import io
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import stylegan
from scripts.cli import main
from stylegan.provenance import Provenance, describe, embed, verify
from stylegan.provenance import watermark as wm
from torch_utils.misc import network_digest

from conftest import reference_path, run

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()


def grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        return np.asarray(im.convert("RGB"))


def facts_of(path: Path) -> dict | None:
    """Our facts, read straight from the file's own fields (PNG iTXt, JPEG/GIF comment, MP4 tag)."""
    if path.suffix == ".mp4":
        import imageio_ffmpeg
        meta = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "ffmetadata",
                               "-"], capture_output=True, text=True).stdout
        line = next((m for m in meta.splitlines() if m.startswith("comment=stylegan:provenance ")), None)
        return None if line is None else json.loads(line.split(" ", 1)[1])
    with Image.open(path) as im:
        info = dict(im.info)
    text = info.get("stylegan:provenance") or info.get("comment")
    if isinstance(text, bytes):
        text = text.decode()
    return None if text is None else json.loads(text.removeprefix("stylegan:provenance "))


# --- every command ----------------------------------------------------------------------------

def test_every_image_writing_command_labels_its_outputs(tmp_path, detector):
    """Walks every command that writes images and checks EVERY image or video file it left: a new
    output written past the provenance path fails here."""
    net = reference_path("sg2ada_skip.pkl")
    digest = network_digest(stylegan.load(net)["G_ema"])
    photo = tmp_path / "photos" / "astronaut.png"
    photo.parent.mkdir()
    Image.fromarray(astronaut()).save(photo)
    out = {k: tmp_path / k for k in ("gen", "jpg", "mix", "video", "proj", "edit", "photo", "align")}
    commands = [
        ("generate", "--network", net, "--seeds", "0-1", "--trunc", "0.7", "--grid", "1x2", "--outdir", out["gen"]),
        ("generate", "--network", net, "--seeds", "3", "--format", "jpg", "--outdir", out["jpg"]),
        ("mix", "--network", net, "--rows", "1", "--cols", "2", "--styles", "0-3", "--save-cells", "--outdir", out["mix"]),
        ("video", "--network", net, "--seeds", "0-1", "--frames-per-seed", "2", "--out", out["video"] / "w.mp4"),
        ("video", "--network", net, "--seeds", "0-1", "--frames-per-seed", "2", "--out", out["video"] / "w.gif"),
        ("project", "--network", net, "--target", out["gen"] / "seed0000.png", "--outdir", out["proj"], "--steps", "3",
         "--video", "--no-identity"),
        ("edit", "--network", net, "--seeds", "0", "--edit", "sefa:0:-1,1", "--grid", "--video", "--outdir", out["edit"]),
        ("edit", "--network", net, "--photo", photo, "--edit", "sefa:0:-1,1", "--steps", "2", "--paste-back",
         "--outdir", out["photo"]),
        ("align", photo, "--outdir", out["align"], "--size", "64"),
    ]
    for args in commands:
        r = run(*args)
        assert r.exit_code == 0, (args[0], r.output)

    expected = {   # file -> (kind, operation); every other image file must be listed here
        "gen/seed0000.png": ("synthetic", "generate"), "gen/seed0001.png": ("synthetic", "generate"),
        "gen/grid0000.png": ("synthetic", "grid"), "jpg/seed0003.jpg": ("synthetic", "generate"),
        "mix/grid.png": ("synthetic", "mix"), "mix/1-2.png": ("synthetic", "mix"),
        "video/w.mp4": ("synthetic", "video"), "video/w.gif": ("synthetic", "video"),
        "proj/seed0000_proj.png": ("synthetic", "project"), "proj/seed0000_compare.png": ("composite", "project"),
        "proj/seed0000_progress.mp4": ("composite", "project"),
        "edit/seed0000_sefa0.png": ("synthetic", "edit"), "edit/grid_sefa0.png": ("synthetic", "edit"),
        "edit/seed0000_sefa0.mp4": ("synthetic", "edit"),
        "photo/astronaut_sefa0.png": ("composite", "paste-back"),
        "photo/astronaut_aligned.png": ("photo", "align"), "photo/astronaut_proj.png": ("synthetic", "project"),
        "align/astronaut.png": ("photo", "align"),
    }
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                     if p.suffix in (".png", ".jpg", ".gif", ".mp4") and "photos" not in p.parts)
    assert written == sorted(expected), "an output is not in this test's list: add it with its expected facts"
    for name, (kind, operation) in expected.items():
        facts = facts_of(tmp_path / name)
        assert facts is not None, f"{name} carries no provenance"
        assert (facts["kind"], facts["operation"]) == (kind, operation), name
        assert facts["software"] == f"stylegan {stylegan.__version__}"
        if kind == "photo":
            assert facts["synthetic"] is False and "digital_source_type" not in facts and "network" not in facts
        else:
            assert facts["synthetic"] is True and facts["network"] == digest, name
            assert facts["digital_source_type"] == IPTC + (
                "trainedAlgorithmicMedia" if kind == "synthetic" else "compositeWithTrainedAlgorithmicMedia")
            assert facts["network_source"] == "sg2ada_skip.pkl"     # the file's name, not the user's folders
    gen = facts_of(tmp_path / "gen/seed0001.png")
    assert (gen["seed"], gen["psi"], gen["noise_mode"]) == (1, 0.7, "const")
    assert facts_of(tmp_path / "gen/grid0000.png")["details"]["seeds"] == [0, 1]
    assert facts_of(tmp_path / "mix/1-2.png")["details"] == {"styles": [0, 1, 2, 3], "row": 1, "col": 2}
    assert [e["strength"] for e in facts_of(tmp_path / "edit/seed0000_sefa0.png")["edits"]] == [-1.0, 1.0]
    assert facts_of(tmp_path / "photo/astronaut_sefa0.png")["watermark"]     # 512 px: the composite is marked
    proj = facts_of(tmp_path / "proj/seed0000_proj.png")
    assert proj["latent"] == stylegan.provenance.file_digest(out["proj"] / "seed0000.w.safetensors")
    assert proj["photo"] == stylegan.provenance.file_digest(out["gen"] / "seed0000.png")
    # The XMP that other tools read says the same as our facts.
    with Image.open(tmp_path / "gen/seed0000.png") as im:
        assert "Iptc4xmpExt:DigitalSourceType=\"" + IPTC + "trainedAlgorithmicMedia\"" in im.info["XML:com.adobe.xmp"]
    with Image.open(tmp_path / "align/astronaut.png") as im:
        assert "DigitalSourceType" not in im.info["XML:com.adobe.xmp"]


def test_dataset_images_claim_nothing(tmp_path):
    """`stylegan dataset` packs photos for training: NVIDIA's archive, byte for byte (the parity test
    in test_make_dataset.py), so its PNGs carry no metadata at all, and nothing claims synthesis."""
    photos = tmp_path / "p"
    photos.mkdir()
    Image.fromarray(astronaut()).save(photos / "a.png")
    r = CliRunner().invoke(main, ["dataset", str(photos), "--out", str(tmp_path / "d.zip"), "--resolution", "64"])
    assert r.exit_code == 0, r.output
    with zipfile.ZipFile(tmp_path / "d.zip") as z:
        pngs = [z.read(n) for n in z.namelist() if n.endswith(".png")]
    assert pngs
    for data in pngs:
        assert verify(data).metadata is None and b"stylegan" not in data and b"DigitalSourceType" not in data


# --- verify: the three answers, and bad inputs --------------------------------------------------

def test_verify_generated_png_its_jpeg_and_a_real_photo(tmp_path, net256):
    out = tmp_path / "out"
    r = run("generate", "--network", net256, "--seeds", "6", "--outdir", out)
    assert r.exit_code == 0, r.output
    png = out / "seed0006.png"
    with Image.open(png) as im:
        im.convert("RGB").save(tmp_path / "copy.jpg", quality=75)        # what a photo site does to an upload
    Image.fromarray(grace_hopper()).save(tmp_path / "grace.png")

    r = run("verify", png, tmp_path / "copy.jpg", tmp_path / "grace.png")
    assert r.exit_code == 0, r.output
    lines = dict(line.split(": ", 1) for line in r.output.strip().splitlines())
    assert lines[str(png)].startswith("metadata: synthetic image, stylegan")
    assert "seed 6" in lines[str(png)] and "watermark: found (stylegan, synthetic" in lines[str(png)]
    assert lines[str(tmp_path / "copy.jpg")].startswith("metadata: none")           # re-encoding drops it...
    assert "watermark: found (stylegan, synthetic" in lines[str(tmp_path / "copy.jpg")]   # ...not the mark
    real = lines[str(tmp_path / "grace.png")]
    assert "watermark: not found" in real and "absence of a mark does not show that an image is real" in real
    assert "not synthetic" not in r.output and "is real" not in real.replace("that an image is real", "")

    prefix = network_digest(stylegan.load(net256)["G_ema"])[:6]
    r = run("verify", "--json", png, tmp_path / "grace.png")
    records = [json.loads(line) for line in r.output.strip().splitlines()]
    assert records[0]["found"] and records[0]["watermark"]["network_prefix"] == prefix
    assert records[0]["metadata"]["seed"] == 6 and records[0]["c2pa"]["state"] == "none"
    assert not records[1]["found"] and records[1]["watermark"]["state"] == "not found"
    assert run("verify", tmp_path / "grace.png").exit_code == 1     # nothing found anywhere

    # --no-watermark: the pixels are the generator's own, and the metadata still says synthetic.
    r = run("generate", "--network", net256, "--seeds", "6", "--outdir", tmp_path / "plain", "--no-watermark")
    assert r.exit_code == 0, r.output
    pixels = stylegan.generate(stylegan.load(net256)["G_ema"], [6])[0]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "plain/seed0006.png")), pixels)
    v = verify(tmp_path / "plain/seed0006.png")
    assert v.metadata["synthetic"] and "watermark" not in v.metadata and v.mark is None
    marked = np.asarray(Image.open(png))
    assert 0 < np.abs(marked.astype(int) - pixels).max() <= 12     # the mark changes pixels, a little


def test_verify_bad_inputs_are_one_line_each(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = embed(astronaut(), Provenance(operation="generate", network="ab" * 32), "png")
    (folder / "a_good.png").write_bytes(good)
    (folder / "b_notes.txt").write_text("not an image\n")
    (folder / "c_truncated.png").write_bytes(good[:len(good) // 3])
    (folder / "d_empty.jpg").write_bytes(b"")
    (folder / "e_sub").mkdir()
    # A PNG of 20000 x 20000 pixels (400 MB decoded, 400 kB on disk: a decompression bomb).
    huge = io.BytesIO()
    Image.new("L", (20000, 20000)).save(huge, "png")
    (folder / "f_huge.png").write_bytes(huge.getvalue())
    r = run("verify", folder, tmp_path / "missing.png")
    lines = r.output.strip().splitlines()
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert len(lines) == 6, r.output            # one per file; the subfolder is not descended into
    by_name = {Path(line.split(":", 1)[0]).name: line for line in lines}
    assert "watermark: found" in by_name["a_good.png"]
    assert by_name["b_notes.txt"].endswith("not an image (or a format Pillow cannot read)")
    assert "metadata: synthetic image" in by_name["c_truncated.png"] and "unreadable" in by_name["c_truncated.png"]
    assert "not an image" in by_name["d_empty.jpg"]
    assert "watermark: not checked: too large to decode" in by_name["f_huge.png"]
    assert by_name["missing.png"].endswith("no such file")
    r = run("verify", tmp_path / "missing.png", folder / "b_notes.txt")
    assert r.exit_code == 2, r.output           # nothing could be read at all


def test_small_images_and_photo_crops_say_so():
    small = verify(embed(np.zeros([200, 200, 3], np.uint8), Provenance(operation="generate"), "png"))
    assert verify(np.zeros([100, 300, 3], np.uint8)).watermark == "too small"
    assert small.watermark == "not found" and small.metadata["synthetic"] and "watermark" not in small.metadata
    crop = verify(embed(astronaut(), Provenance(kind="photo", operation="align"), "png"))
    assert crop.mark is None and crop.metadata["synthetic"] is False     # a photo's pixels are never marked
    assert "crop of a photo" in crop.line() and "not synthesised by stylegan" in crop.line()
    with pytest.raises(ValueError, match="unknown provenance kind"):
        Provenance(kind="real")


# --- the watermark -----------------------------------------------------------------------------

def _jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "jpeg", quality=quality)
    return np.asarray(Image.open(buf))


@pytest.mark.parametrize("photo", [astronaut, grace_hopper])
def test_watermark_survives_jpeg_crop_and_resize_of_real_photos(photo):
    img = photo()
    bits = wm.payload_bits("synthetic", "0123456789abcdef")
    marked = wm.embed(img, bits)
    psnr = 10 * np.log10(255 ** 2 / np.mean((marked.astype(float) - img) ** 2))
    assert psnr > 40                                   # benchmarks/watermark.py: 41.7-42.3 dB
    for attacked in (marked, _jpeg(marked, 90), _jpeg(marked, 75)):
        np.testing.assert_array_equal(wm.read_bits(attacked), bits)
        mark = wm.read(attacked, search=False)
        assert (mark.kind, mark.network_prefix, mark.shifted) == ("synthetic", "012345", False)
    h, w = img.shape[:2]
    cropped = marked[h // 20:h - h // 20, w // 20:w - w // 20]           # 5 % off each side
    half = np.asarray(Image.fromarray(marked).resize((w // 2, h // 2), Image.Resampling.BICUBIC))
    assert wm.read(cropped, search=False) is None                       # the grid moved...
    for attacked in (cropped, half if h == w else marked):
        mark = wm.read(attacked)                                        # ...and the search finds it again
        assert mark is not None and mark.network_prefix == "012345"
    # The real photo itself carries nothing, even after every alignment is tried.
    assert wm.read(img) is None and wm.read(_jpeg(img, 75)) is None


def test_watermark_payload_and_bit_tiling():
    bits = wm.payload_bits("composite", "fedcba9876")
    assert bits.shape == (64,) and wm.parse_bits(bits) == ("composite", "fedcba")
    for k in range(64):                                 # any single flipped bit is caught by the CRC
        flipped = bits.copy()
        flipped[k] ^= 1
        assert wm.parse_bits(flipped) is None
    # Block (i, j) carries bit (i % 8) * 8 + j % 8: a crop by whole tiles keeps the same reading.
    marked = wm.embed(astronaut(), bits)
    np.testing.assert_array_equal(wm.read_bits(marked[64:, 128:]), bits)
    assert wm.embed(np.zeros([128, 512, 3], np.uint8), bits).max() == 0     # too small: unchanged


# --- C2PA ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory):
    """A root CA and a signing certificate made here, never used anywhere else."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    folder = tmp_path_factory.mktemp("ca")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Throwaway Test CA")])

    def cert(subject, key, issuer, issuer_key, ca):
        usage = dict(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                     encipher_only=False, decipher_only=False)
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=7))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(**usage), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
        if not ca:
            b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                 .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                critical=False))
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = cert(name("Throwaway Root"), ca_key, name("Throwaway Root"), ca_key, ca=True)
    leaf = cert(name("Throwaway Signer"), key, root.subject, ca_key, ca=False)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)  # noqa: E731
    (folder / "cert.pem").write_bytes(pem(leaf) + pem(root))
    (folder / "root.pem").write_bytes(pem(root))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    other = ec.generate_private_key(ec.SECP256R1())
    (folder / "other_key.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return folder


def _tamper(data: bytes, fmt: str) -> bytes:
    """One bit of the image data flipped (a PNG's compressed pixels, a JPEG's scan)."""
    at = data.index(b"IDAT") + 40 if fmt == "png" else data.rindex(b"\xff\xda") + 40
    changed = bytearray(data)
    changed[at] ^= 1
    return bytes(changed)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_signed_manifest_valid_untrusted_and_tampered(tmp_path, throwaway_ca, fmt):
    pytest.importorskip("c2pa")
    out = tmp_path / "out"
    ca = throwaway_ca
    r = run("generate", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "2", "--format", fmt,
            "--outdir", out, "--sign", ca / "key.pem", ca / "cert.pem")
    assert r.exit_code == 0, r.output
    path = out / f"seed0002.{fmt}"
    trusted = verify(path, trust=(ca / "root.pem").read_bytes())
    assert trusted.c2pa.state == "valid" and "Throwaway Signer" in trusted.c2pa.signer
    assert trusted.c2pa.facts["seed"] == 2 and trusted.c2pa.facts == trusted.metadata   # the same facts
    assert verify(path).c2pa.state == "untrusted"        # intact, but nobody said to trust this CA
    bad = tmp_path / f"bad.{fmt}"
    bad.write_bytes(_tamper(path.read_bytes(), fmt))
    assert verify(bad, trust=(ca / "root.pem").read_bytes()).c2pa.state == "invalid"
    r = run("verify", "--trust", ca / "root.pem", path, bad)
    assert "C2PA: valid, signed by Throwaway Signer" in r.output and "C2PA: invalid" in r.output, r.output


def test_signing_options_fail_early_in_one_line(tmp_path, throwaway_ca, monkeypatch):
    pytest.importorskip("c2pa")
    net, ca = reference_path("sg2ada_skip.pkl"), throwaway_ca
    for key, cert, words in [(ca / "missing.pem", ca / "cert.pem", "cannot read the private key"),
                             (ca / "cert.pem", ca / "cert.pem", "not an unencrypted PEM private key"),
                             (ca / "other_key.pem", ca / "cert.pem", "is not the one of the key")]:
        r = run("generate", "--network", net, "--seeds", "0", "--outdir", tmp_path / "o", "--sign", key, cert)
        assert r.exit_code != 0 and words in r.output and "Traceback" not in r.output, r.output
        assert not list((tmp_path / "o").glob("*.png"))
    # The environment says the same as --sign.
    monkeypatch.setenv("STYLEGAN_SIGN_KEY", str(ca / "key.pem"))
    monkeypatch.setenv("STYLEGAN_SIGN_CERT", str(ca / "cert.pem"))
    r = run("mix", "--network", net, "--rows", "1", "--cols", "2", "--outdir", tmp_path / "m")
    assert r.exit_code == 0, r.output
    assert verify(tmp_path / "m/grid.png").c2pa.state == "untrusted"


def test_describe_and_embed_for_your_own_files():
    facts = describe(Provenance(operation="edit", seed=np.int64(4), edits=(("smile", 2),)))
    assert facts["seed"] == 4 and facts["edits"] == [{"direction": "smile", "strength": 2.0}]
    assert json.loads(json.dumps(facts)) == facts
    data = embed(grace_hopper(), Provenance(operation="mine", network="cd" * 32), "jpg", quality=90)
    v = stylegan.verify(data)
    assert v.metadata["operation"] == "mine" and v.mark.network_prefix == "cdcdcd"
