"""What made an image, as facts: the `Provenance` a pipeline fills in, and the metadata it becomes.

A pipeline knows what it made (a seed's face, a style mix, an edit of a photo, a crop of a photo);
the caller knows the rest (the network's name as the user gave it, whether to watermark, a signing
key). Both go into one `Provenance`; `describe` turns it into plain facts (a JSON-able dict), and
`text_chunks` / `jpeg_fields` into the metadata an image file carries: the IPTC digital source type
in XMP (what other tools read), a one-line description, and the facts as JSON under
`stylegan:provenance` (what `verify` reads back)."""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Optional

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# kind -> IPTC digital source type. A crop of a photo claims nothing: the toolkit did not make its
# pixels and cannot know where the photo came from.
SOURCE_TYPES = {"synthetic": IPTC + "trainedAlgorithmicMedia",
                "composite": IPTC + "compositeWithTrainedAlgorithmicMedia",
                "photo": None}
KEY = "stylegan:provenance"          # PNG text keyword / JPEG and GIF comment prefix of the facts
XMP_KEY = "XML:com.adobe.xmp"        # the PNG keyword XMP readers look for


@dataclass(frozen=True)
class Provenance:
    """What made one image, plus how to mark it.

    Facts (None / empty when not known or not relevant; `describe` leaves them out):
      kind          'synthetic' (the generator's pixels), 'composite' (generator pixels pasted into
                    or shown beside a photo) or 'photo' (pixels of an input photo: nothing claimed)
      operation     the story that made it: generate, grid, mix, video, project, tune, edit, paste-back, align
      network       the generator's digest (`torch_utils.misc.network_digest`), network_source its
                    name as given (a model-zoo name, a file name, a URL)
      seed, psi, truncation_cutoff, noise_mode, class_idx: as the generator was called
      latent        sha256 of the latent file the image was rendered from
      photo         sha256 of the input photo (projection target, the photo pasted into, the photo cropped)
      edits         ((direction, strength), ...) applied to the latent
      details       anything else the operation knows (mix rows / cols / styles, projection steps)
    How to mark (not facts): `watermark` (the invisible mark, see watermark.py) and `signer` (a C2PA
    `signing.Signer`, None for no manifest)."""
    kind: str = "synthetic"
    operation: Optional[str] = None
    network: Optional[str] = None
    network_source: Optional[str] = None
    seed: Optional[int] = None
    psi: Optional[float] = None
    truncation_cutoff: Optional[int] = None
    noise_mode: Optional[str] = None
    class_idx: Optional[int] = None
    latent: Optional[str] = None
    photo: Optional[str] = None
    edits: tuple = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    watermark: bool = True
    signer: Any = None

    def __post_init__(self):
        if self.kind not in SOURCE_TYPES:
            raise ValueError(f"unknown provenance kind {self.kind!r}: expected one of {sorted(SOURCE_TYPES)}")

    def with_(self, **changes) -> "Provenance":
        """A copy with `changes`; `details` are merged, not replaced."""
        if "details" in changes:
            changes["details"] = {**self.details, **changes["details"]}
        return replace(self, **changes)

    @property
    def synthetic(self) -> bool:
        return SOURCE_TYPES[self.kind] is not None


_NOT_FACTS = {"watermark", "signer"}


def describe(provenance: Provenance, watermarked: bool = False) -> dict:
    """The facts of `provenance` as a JSON-able dict (what the image's metadata and C2PA manifest
    say). `watermarked`: whether the pixels carry the invisible mark."""
    from .._version import __version__
    facts: dict[str, Any] = {"synthetic": provenance.synthetic,
                             "digital_source_type": SOURCE_TYPES[provenance.kind],
                             "software": f"stylegan {__version__}"}
    for f in fields(provenance):
        value = getattr(provenance, f.name)
        if f.name in _NOT_FACTS or value is None or (isinstance(value, (tuple, dict)) and not value):
            continue
        if f.name == "edits":
            value = [{"direction": str(d), "strength": float(s)} for d, s in value]
        facts[f.name] = value
    if facts["digital_source_type"] is None:
        del facts["digital_source_type"]
    if watermarked:
        facts["watermark"] = "stylegan-dwt-dct-svd-1"
    return json.loads(json.dumps(facts, default=_plain))   # numpy numbers and tuples as JSON has them


def _plain(v):
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, (set, frozenset)):
        return sorted(v)
    return str(v)


def summary(facts: Mapping[str, Any]) -> str:
    """One line for people: what the facts say."""
    if facts.get("synthetic"):
        what = "composite of a photo and generated pixels" if facts.get("kind") == "composite" else "synthetic image"
    else:
        what = "crop of a photo (not synthesised by stylegan; nothing is claimed about the photo itself)"
    parts = [f"{what}, {facts.get('software', 'stylegan')}"]
    if facts.get("operation"):
        parts.append(str(facts["operation"]))
    if facts.get("network"):
        name = f" ({facts['network_source']})" if facts.get("network_source") else ""
        parts.append(f"network {str(facts['network'])[:12]}{name}")
    for key, label in (("seed", "seed"), ("psi", "psi"), ("noise_mode", "noise"), ("class_idx", "class")):
        if facts.get(key) is not None:
            parts.append(f"{label} {facts[key]}")
    if facts.get("latent"):
        parts.append(f"latent {str(facts['latent'])[:12]}")
    for e in facts.get("edits") or ():
        parts.append(f"edit {e.get('direction')} {e.get('strength'):+g}")
    return ", ".join(parts)


def xmp_packet(facts: Mapping[str, Any]) -> str:
    """An XMP packet with the IPTC digital source type (when there is one) and the creator tool."""
    source = facts.get("digital_source_type")
    attrs = [f'xmp:CreatorTool="{_xml(facts["software"])}"']
    if source:
        attrs.append(f'Iptc4xmpExt:DigitalSourceType="{_xml(source)}"')
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" ' + " ".join(attrs) + "/>"
            '</rdf:RDF></x:xmpmeta><?xpacket end="r"?>')


def _xml(text: str) -> str:
    return str(text).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def text_chunks(facts: Mapping[str, Any]) -> dict[str, str]:
    """PNG text chunks (keyword -> text) for `facts`."""
    return {"Software": facts["software"], "Description": summary(facts), XMP_KEY: xmp_packet(facts),
            KEY: json.dumps(facts, separators=(",", ":"))}


def comment(facts: Mapping[str, Any]) -> str:
    """The facts as one comment (JPEG COM segment, GIF comment extension, an MP4's comment tag)."""
    return f"{KEY} {json.dumps(facts, separators=(',', ':'))}"


# --- reading back ----------------------------------------------------------------------------------

_SOURCE_TYPE = re.compile(r"DigitalSourceType(?:=\"|>)\s*([^\"<\s]+)")


def read_facts(info: Mapping[str, Any]) -> Optional[dict]:
    """The facts in a decoded image's metadata (PIL's `Image.info`, which holds PNG text chunks,
    JPEG/GIF comments and XMP): ours when present, else the IPTC digital source type another
    tool wrote, else None."""
    for value in (info.get(KEY), info.get("comment"), info.get("Comment")):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str):
            text = value.removeprefix(KEY).strip()
            try:
                facts = json.loads(text)
            except ValueError:
                continue
            if isinstance(facts, dict) and "software" in facts:
                return facts
    for value in (info.get(XMP_KEY), info.get("xmp"), info.get("XML:com.adobe.xmp")):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and (m := _SOURCE_TYPE.search(value)):
            source = m.group(1)
            return {"synthetic": "AlgorithmicMedia" in source or "dataDrivenMedia" in source or
                    source.endswith("compositeSynthetic"), "digital_source_type": source, "software": None,
                    "foreign": True}
    return None


def source_name(network: str | os.PathLike) -> str:
    """The network as an image names it: a model-zoo name or URL as given, a file by its name only
    (a folder path says more about the user than about the image)."""
    network = str(network)
    return network if "://" in network or not os.path.exists(network) else os.path.basename(network)


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (a latent, a photo), for the facts."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
