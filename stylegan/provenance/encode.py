"""Pixels + provenance -> the bytes of an image file carrying every layer the provenance asks for.

The order is fixed by what each layer protects: the watermark changes pixels, so it comes first;
the metadata goes into the encoded file; a C2PA signature covers the finished file, so it comes
last. Every image the toolkit writes or hands out is encoded here (`io.image_files` calls it)."""
from __future__ import annotations

import io
from typing import Optional

import numpy as np

from . import watermark
from .record import Provenance, comment, describe, text_chunks, xmp_packet

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG"}


def mark_pixels(img: np.ndarray, provenance: Provenance) -> tuple[np.ndarray, bool]:
    """(pixels, whether they carry the watermark): marked when `provenance.watermark` is on, the
    image is the toolkit's (not a photo crop) and it is RGB of at least watermark.MIN_SIDE pixels."""
    if not (provenance.watermark and provenance.synthetic and watermark.markable(img)):
        return img, False
    return watermark.embed(img, watermark.payload_bits(provenance.kind, provenance.network)), True


def embed(img: np.ndarray, provenance: Provenance, fmt: str = "png", title: Optional[str] = None,
          premarked: bool = False, **params) -> bytes:
    """[H, W, C] uint8 (C = 1 or 3) -> the bytes of a PNG or JPEG with the watermark (when asked
    and the image takes it), the metadata, and a signed C2PA manifest when `provenance.signer` is
    set. `title`: the file name, for the manifest. `premarked`: `mark_pixels` has already put the
    watermark in (on another thread). `params` go to Pillow's encoder."""
    from PIL import Image, PngImagePlugin
    pil_format = FORMATS.get(fmt.lower())
    if pil_format is None:
        raise ValueError(f"unknown image format {fmt!r}: expected one of {sorted(FORMATS)}")
    assert img.ndim == 3 and img.dtype == np.uint8, f"expected [H, W, C] uint8, got {img.dtype} {img.shape}"
    img, marked = (img, True) if premarked else mark_pixels(img, provenance)
    facts = describe(provenance, watermarked=marked)
    pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
    buf = io.BytesIO()
    if pil_format == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, text in text_chunks(facts).items():
            info.add_itxt(key, text)      # iTXt: UTF-8, so names in any script survive
        pil.save(buf, format="PNG", pnginfo=info, **params)
    else:
        pil.save(buf, format="JPEG", comment=comment(facts).encode(), xmp=xmp_packet(facts).encode(), **params)
    data = buf.getvalue()
    if provenance.signer is not None:
        from .signing import sign
        data = sign(data, fmt.lower(), facts, provenance.signer, title)
    return data


def video_comment(provenance: Provenance) -> str:
    """The facts as the comment an MP4 or GIF carries (its frames carry the watermark: `mark_pixels`)."""
    return comment(describe(provenance, watermarked=provenance.watermark and provenance.synthetic))
