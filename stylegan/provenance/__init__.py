"""Provenance: every image the toolkit writes says how it was made, and `verify` reads it back.

Three layers, each in its own module:
- record.py: the facts (`Provenance`, `describe`) as metadata: the IPTC digital source type in XMP
  and the facts as JSON, in PNG text chunks or JPEG/GIF/MP4 comments. Free; lost on re-encoding.
- watermark.py: an invisible mark in the pixels (toolkit tag + network digest prefix) that survives
  JPEG and, with a search, resizes to the generator's size and small crops.
- signing.py: a C2PA manifest signed with the user's certificate (`pip install "stylegan[sign]"`).
`embed` applies them to pixels on the way to a file (io.image_files calls it for every image);
`verify` reads all three back. For your own files: `embed(image, Provenance(...), "png")` gives
the bytes to write."""
from .encode import embed, mark_pixels, video_comment
from .record import Provenance, describe, file_digest, source_name
from .signing import Signer
from .verdict import Verification, verify, verify_paths

__all__ = ["Provenance", "describe", "embed", "mark_pixels", "video_comment", "verify", "verify_paths",
           "Verification", "Signer", "file_digest", "source_name"]
