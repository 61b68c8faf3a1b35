"""An invisible watermark that survives re-encoding: DWT-DCT-SVD quantisation index modulation.

The scheme is the one `invisible-watermark` calls dwtDctSvd (the mark Stable Diffusion's scripts
use): one level of the Haar wavelet on a colour channel, the low band cut into 4x4 blocks, each
block's 2-D DCT, and the largest singular value of that DCT quantised onto a lattice of step
`STRENGTH`: a quarter step above a lattice point for bit 0, three quarters for bit 1. A JPEG or a
light colour change moves the singular value by less than a quarter step, so the bit stays.

Our differences from that library, each for a measured reason (benchmarks/watermark.py):
- Vectorised over all blocks (one batched SVD): ~40x faster at 1024 px, so the mark keeps up with a
  generator without a process pool.
- Everything in float with one rounding at the end, and the wavelet bands put back in their own
  order (the library swaps the horizontal and vertical detail bands on the way back, which costs
  it several dB of PSNR that no watermark needs).
- Bits are tiled in 2-D (block (i, j) carries bit (i % 8, j % 8)) rather than in raster order,
  so a cropped image still has whole tiles: `read` searches the 8x8 pixel phase and the tile
  phase, and the CRC tells the one true alignment from the others.
- The payload checks itself: 32 bits (format, kind, network digest prefix) and a CRC-32 over them
  keyed by the toolkit's tag, so "found" means 32 check bits agreed, not that some bits were read.

It does not survive what moves the block grid against the content in a way we cannot undo: a
resize to another size than the generator's own (we try those), rotation, a crop-and-resize, heavy
noise, or a screenshot at another scale."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

# Colour channel of the mark: U (blue-difference chroma, BT.601), as the library's default; the eye
# is least sensitive there and JPEG's 2x2 chroma subsampling matches the Haar band's resolution.
_RGB_TO_YUV = np.array([[0.299, 0.587, 0.114],
                        [-0.14713, -0.28886, 0.436],
                        [0.615, -0.51499, -0.10001]])
_YUV_TO_RGB = np.linalg.inv(_RGB_TO_YUV)
CHANNEL = 1
STRENGTH = 36.0          # lattice step of the singular value (the library's default for dwtDctSvd)
BLOCK = 4                # DCT block side, in low-band samples (8 image pixels)
TILE = 8                 # bits tile as TILE x TILE blocks: 64 bits, repeating every 64 pixels
MIN_SIDE = 256           # smaller images carry too few repetitions of each bit to survive JPEG
MIN_READ_SIDE = 128      # a marked image cropped or scaled below MIN_SIDE may still be read
SEARCH_MAX_PIXELS = 2048 * 2048   # larger images are read where the grid was put, without the search
FORMAT_VERSION = 1
KINDS = {1: "synthetic", 2: "composite"}
_KEY = b"stylegan-watermark-v1"


@dataclass(frozen=True)
class Mark:
    """What a watermark says: `kind` ('synthetic' or 'composite'), the network digest's first 6
    hex digits, and how clearly it was read (`confidence` in [0, 1]: the mean agreement of each
    bit's repetitions; an unmarked image reads near 0)."""
    kind: str
    network_prefix: str
    confidence: float
    shifted: bool = False      # found only after searching the crop alignment or the scale


def payload_bits(kind: str, network_digest: str | None) -> np.ndarray:
    """The 64 bits of the mark: version and kind (8), network digest prefix (24), keyed CRC-32 (32)."""
    code = {v: k for k, v in KINDS.items()}[kind]
    prefix = bytes.fromhex((network_digest or "")[:6].ljust(6, "0"))
    body = bytes([FORMAT_VERSION << 4 | code]) + prefix
    crc = zlib.crc32(_KEY + body).to_bytes(4, "big")
    return np.unpackbits(np.frombuffer(body + crc, np.uint8))


def parse_bits(bits: np.ndarray) -> tuple[str, str] | None:
    """(kind, network prefix) when the CRC checks, else None."""
    raw = np.packbits(bits.astype(np.uint8)).tobytes()
    body, crc = raw[:4], raw[4:]
    if zlib.crc32(_KEY + body).to_bytes(4, "big") != crc or body[0] >> 4 != FORMAT_VERSION:
        return None
    kind = KINDS.get(body[0] & 15)
    return None if kind is None else (kind, body[1:].hex())


def _channel(img: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 -> the marked channel [H, W], float32, offset by 128 as 8-bit YUV stores it
    (the offset makes each block's DC term its largest singular value, see `_top_singular`)."""
    return img.astype(np.float32) @ _RGB_TO_YUV[CHANNEL].astype(np.float32) + 128


def _low_band(x: np.ndarray) -> np.ndarray:
    """The orthonormal Haar wavelet's low band: each 2x2 pixel block's sum / 2."""
    h, w = x.shape
    return x.reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) / 2


def _top_singular(a: np.ndarray, iterations: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest singular value and its vectors of each [..., B, B] matrix, by power iteration from
    the DC direction: with the 128 offset the DC term dominates, so a few steps converge (the
    batched LAPACK SVD of every block costs 5x more and computes three vectors we do not use)."""
    ata = np.swapaxes(a, -1, -2) @ a
    v = ata[..., :, 0]
    for _ in range(iterations):
        v = np.einsum("...ij,...j->...i", ata, v)
        v /= np.linalg.norm(v, axis=-1, keepdims=True) + 1e-30
    av = np.einsum("...ij,...j->...i", a, v)
    s = np.linalg.norm(av, axis=-1)
    return s, av / (s[..., None] + 1e-30), v


def _blocks(ll: np.ndarray) -> np.ndarray:
    """[h, w] low band (multiples of BLOCK) -> [h/B, w/B, B, B] blocks."""
    h, w = ll.shape
    return ll.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2)


def _unblocks(blocks: np.ndarray) -> np.ndarray:
    nh, nw = blocks.shape[:2]
    return blocks.swapaxes(1, 2).reshape(nh * BLOCK, nw * BLOCK)


def _dct(blocks: np.ndarray) -> np.ndarray:
    from scipy.fft import dctn
    return dctn(blocks, axes=(-2, -1), norm="ortho")


def _idct(blocks: np.ndarray) -> np.ndarray:
    from scipy.fft import idctn
    return idctn(blocks, axes=(-2, -1), norm="ortho")


def _bit_index(nh: int, nw: int, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """[nh, nw] index of the bit each block carries (TILE x TILE tiling, shifted by `phase` blocks)."""
    i = (np.arange(nh)[:, None] + phase[0]) % TILE
    j = (np.arange(nw)[None, :] + phase[1]) % TILE
    return i * TILE + j


def _usable(shape: tuple[int, ...]) -> tuple[int, int]:
    """The top-left part of an image the block grid covers (multiples of 2 * BLOCK pixels)."""
    step = 2 * BLOCK
    return shape[0] // step * step, shape[1] // step * step


def markable(img: np.ndarray, min_side: int = MIN_SIDE) -> bool:
    """RGB and at least `min_side` pixels on each side."""
    return img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= min_side


def readable(img: np.ndarray) -> bool:
    return markable(img, MIN_READ_SIDE)


def embed(img: np.ndarray, bits: np.ndarray, strength: float = STRENGTH) -> np.ndarray:
    """[H, W, 3] uint8 -> the same image with `bits` (64) in it. Images that are not `markable`
    come back unchanged (the caller records that no mark was made)."""
    if not markable(img):
        return img
    assert bits.shape == (TILE * TILE,), bits.shape
    h, w = _usable(img.shape)
    coeffs = _dct(_blocks(_low_band(_channel(img[:h, :w]))))
    s0, u0, v0 = _top_singular(coeffs)
    bit = bits[_bit_index(*coeffs.shape[:2])]
    target = (np.floor(s0 / strength) + 0.25 + 0.5 * bit) * strength
    # Moving the top singular value alone is a rank-one change of each block; the DCT and the Haar
    # synthesis are linear and orthonormal, so the pixels move by its inverse transforms: each low-band
    # sample's change, halved, on its 2x2 pixels.
    change = _idct((target - s0)[..., None, None] * u0[..., :, None] * v0[..., None, :])
    delta = np.repeat(np.repeat(_unblocks(change) / 2, 2, axis=0), 2, axis=1)
    rgb = delta[..., None] * _YUV_TO_RGB[:, CHANNEL].astype(np.float32)
    out = img.copy()
    out[:h, :w] = np.clip(np.rint(img[:h, :w] + rgb), 0, 255).astype(np.uint8)
    return out


def block_votes(img: np.ndarray, offset: tuple[int, int] = (0, 0), strength: float = STRENGTH) -> np.ndarray:
    """Each block's soft vote in [-1, 1] (+1: surely bit 1, -1: surely bit 0), [nh, nw], with the
    block grid starting `offset` pixels into the image."""
    img = img[offset[0]:, offset[1]:]
    h, w = _usable(img.shape)
    s0 = _top_singular(_dct(_blocks(_low_band(_channel(img[:h, :w])))))[0]
    # Position on the lattice: 1/4 step (bit 0) -> -1, 3/4 step (bit 1) -> +1.
    return -np.sin(2 * np.pi * (s0 / strength))


def tally(votes: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Mean vote of each of the 64 bits over its repetitions."""
    idx = _bit_index(*votes.shape, phase).ravel()
    sums = np.bincount(idx, votes.ravel(), minlength=TILE * TILE)
    counts = np.bincount(idx, minlength=TILE * TILE)
    return sums / np.maximum(counts, 1)


def read_bits(img: np.ndarray, strength: float = STRENGTH) -> np.ndarray:
    """The 64 bits as read with the grid at the image's corner (no search): for measuring bit accuracy."""
    return (tally(block_votes(img, strength=strength)) > 0).astype(np.uint8)


def read(img: np.ndarray, search: bool = True, sizes: tuple[int, ...] = (256, 512, 1024, 2048)) -> Mark | None:
    """The mark in an [H, W, 3] uint8 image, or None. With `search`, when the grid at the corner
    reads nothing: the image rescaled to each generator size in `sizes` near its own (undoes a
    resize), then every 8x8 pixel phase and 8x8 tile phase (undoes a crop)."""
    if not readable(img):
        return None
    found = _parse(tally(block_votes(img)))
    if found is not None or not search or img.shape[0] * img.shape[1] > SEARCH_MAX_PIXELS:
        return found
    from PIL import Image
    for size in sizes:
        if (img.shape[0], img.shape[1]) != (size, size) and 0.4 < img.shape[0] / size < 1.6:
            scaled = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))
            if (found := _parse(tally(block_votes(scaled)))) is not None:
                return replace(found, shifted=True)
    step = 2 * BLOCK
    for dy in range(step):
        for dx in range(step):
            votes = block_votes(img, (dy, dx))
            for pi in range(TILE):
                for pj in range(TILE):
                    if (dy, dx, pi, pj) != (0, 0, 0, 0) and (found := _parse(tally(votes, (pi, pj)))) is not None:
                        return replace(found, shifted=True)
    return None


def _parse(means: np.ndarray) -> Mark | None:
    parsed = parse_bits(means > 0)
    if parsed is None:
        return None
    return Mark(parsed[0], parsed[1], float(np.mean(np.abs(means))))
