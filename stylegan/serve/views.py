"""What the page shows, as one request: a `View`, and the library calls that draw it.

A view is the whole state of the picture (network, seed, psi, noise, class, pose, the edits and
their strengths, the mixing grid, the photo): every render, download and command is a function of
it, so the image on screen, the PNG saved, the latent file and the printed command always agree.
Edits name directions by id: 'sefa' (computed from the edit's rows), 'ganspace' (once computed),
'registry:NAME' (a `stylegan models --kind direction` file, once fetched) and 'upload:N' (a file the
page uploaded into its session)."""
from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from .. import hub
from ..editing import Move, edit_many
from ..editing.apply import apply_moves
from ..networks.stylegan3 import pose_transform
from ..pipelines.edit import EditSpec, format_int_list, resolve_direction
from ..pipelines.mixing import style_mix
from ..provenance import Provenance
from . import photo as photo_steps
from .networks import ServedNetwork
from .sessions import Session

COMPUTED = ("sefa", "ganspace")
MAX_GRID = 6            # seeds per side of a mixing grid on the page


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EditIn(_Strict):
    direction: str = Field(max_length=200)
    component: int = Field(0, ge=0, le=4095)
    rows: Optional[list[int]] = Field(None, max_length=64)
    strength: float = Field(0.0, ge=-1e4, le=1e4, allow_inf_nan=False)


class MixIn(_Strict):
    rows: list[int] = Field(min_length=1, max_length=MAX_GRID)
    cols: list[int] = Field(min_length=1, max_length=MAX_GRID)
    styles: list[int] = Field(min_length=1, max_length=64)


class View(_Strict):
    network: str = Field(max_length=200)
    view: Literal["generate", "mix", "photo"] = "generate"
    seed: int = Field(0, ge=0, le=2 ** 32 - 1)
    psi: float = Field(1.0, ge=-100, le=100, allow_inf_nan=False)
    noise_mode: Literal["const", "random", "none"] = "const"
    class_idx: Optional[int] = Field(None, ge=0)
    translate: tuple[float, float] = (0.0, 0.0)
    rotate: float = Field(0.0, ge=-3600, le=3600, allow_inf_nan=False)
    edits: list[EditIn] = Field(default_factory=list, max_length=32)
    mix: Optional[MixIn] = None
    paste_back: bool = False

    def transform(self, net: ServedNetwork) -> np.ndarray | None:
        """StyleGAN3's input transform, None for the identity pose."""
        if self.view != "generate" or (self.translate == (0.0, 0.0) and self.rotate == 0.0):
            return None
        if not net.stylegan3:
            raise ValueError("translate and rotate need a StyleGAN3 network")
        if not all(np.isfinite(self.translate)) or max(abs(v) for v in self.translate) > 100:
            raise ValueError("translate must be two finite numbers")
        return pose_transform(self.translate, self.rotate)

    def active_edits(self) -> list[EditIn]:
        """The edits that move something: a slider at 0 is no edit."""
        return [e for e in self.edits if e.strength != 0]


@dataclass
class Edit:
    spec: EditSpec
    shown: str          # the source as the command line names it (an upload's own file name)
    cache: dict         # where resolve_direction keeps the direction


def resolve_edits(view: View, net: ServedNetwork, session: Session) -> list[Edit]:
    """The view's active edits as library edit specs, each with the cache its direction lives in."""
    photo = view.view == "photo"
    out = []
    for e in view.active_edits():
        rows = sorted(set(e.rows)) if e.rows else None
        if rows and not all(0 <= r < net.G.num_ws for r in rows):
            raise ValueError(f"rows {rows} out of range: this network has ws rows 0..{net.G.num_ws - 1}")
        spec = EditSpec(e.direction, e.component, rows, [e.strength])
        shown, cache = e.direction, net.directions
        if e.direction == "ganspace" and ("ganspace",) not in net.directions:
            raise ValueError("GANSpace is not computed yet for this network: add it first")
        elif e.direction.startswith("registry:"):
            name = e.direction.split(":", 1)[1]
            if hub.cached(name) is None:
                raise ValueError(f"{name} is not downloaded yet: add it first")
            spec.source = shown = name
        elif e.direction.startswith("upload:"):
            upload = session.directions.get(e.direction)
            if upload is None:
                raise ValueError(f"no uploaded direction {e.direction!r} in this page's session")
            spec.source, shown, cache = str(upload.path), upload.filename, session.cache(net.name)
        elif e.direction not in COMPUTED:
            raise ValueError(f"unknown direction {e.direction!r}")
        if photo:
            # A projection's edits use directions of the network it was projected into (the photo
            # pipeline's rule, whatever tuning did): what this network already found carries over.
            found, cache = cache, _projected(view, net, session).projection.directions
            for key in [k for k in found if k[0] == spec.source and k not in cache]:
                cache[key] = found[key]
        out.append(Edit(spec, shown, cache))
    return out


def moves(edits: list[Edit], G: torch.nn.Module) -> list[Move]:
    return [Move(resolve_direction(e.spec, G, e.cache), e.spec.strengths[0], e.spec.component, e.spec.rows)
            for e in edits]


def _projected(view: View, net: ServedNetwork, session: Session) -> photo_steps.Projected:
    projected = session.projected
    if projected is None:
        raise ValueError("no projected photo yet: upload a photo and project a face")
    if projected.network != net.name:
        raise ValueError(f"the photo was projected with {projected.network}: project it again with {net.name}")
    return projected


def _latent(view: View, net: ServedNetwork, session: Session) -> tuple[torch.nn.Module, torch.Tensor]:
    """The generator and the ws [1, num_ws, w_dim] the view edits."""
    if view.view == "photo":
        projection = _projected(view, net, session).projection
        return projection.G, projection.ws
    return net.G, net.seed_ws(view.seed, view.psi, view.class_idx)


@torch.no_grad()
def render(view: View, net: ServedNetwork, session: Session) -> np.ndarray:
    """The view's image, [H, W, C] uint8. Runs on the render thread."""
    if view.view == "mix":
        if view.mix is None:
            raise ValueError("a mixing view needs rows, cols and styles")
        return style_mix(net.G, view.mix.rows, view.mix.cols, view.mix.styles, psi=view.psi,
                         noise_mode=view.noise_mode, class_idx=view.class_idx).grid()
    edits = resolve_edits(view, net, session)
    if view.view == "photo":
        return photo_steps.render(_projected(view, net, session), [e.spec for e in edits],
                                  session.photo if view.paste_back else None)
    G, ws = _latent(view, net, session)
    with net.posed(view.transform(net)) as G:
        return edit_many(G, ws, moves(edits, G), view.noise_mode)[0]


@torch.no_grad()
def latent(view: View, net: ServedNetwork, session: Session) -> tuple[torch.Tensor | dict, str]:
    """The edited latent and its space: w+ ([1, num_ws, w_dim]), or the styles ('s') when an edit moves S."""
    if view.view == "mix":
        raise ValueError("a mixing grid has no single latent: download one cell's seed from Generate")
    edits = resolve_edits(view, net, session)
    G, ws = _latent(view, net, session)
    ws, styles = apply_moves(G, ws, moves(edits, G))
    return (ws.cpu(), "w+") if styles is None else ({k: v.cpu() for k, v in styles.items()}, "s")


def provenance(view: View, net: ServedNetwork, session: Session, base: Provenance) -> Provenance:
    """What the view's image is, as the command line's image of it says: `base` (watermark, signer)
    with the network, the seed and settings, the edits; a photo's edit names the photo, and pasted
    back into it, is a composite."""
    made = net.provenance(base).with_(kind="synthetic")
    if view.view == "mix":
        m = view.mix
        return made.with_(operation="mix", psi=view.psi, noise_mode=view.noise_mode, class_idx=view.class_idx,
                          details={} if m is None else {"rows": m.rows, "cols": m.cols, "styles": sorted(set(m.styles))})
    edits = tuple((dataclasses.replace(e.spec, source=e.shown).label, e.spec.strengths[0])
                  for e in resolve_edits(view, net, session))
    if view.view == "photo":
        projected = _projected(view, net, session)
        made = made.with_(operation="edit", photo=session.photo_digest, edits=edits,
                          details={"projection": projected.projection.space, "pti": projected.pti_steps > 0})
        return made.with_(kind="composite", operation="paste-back") if view.paste_back else made
    transform = view.transform(net)
    return made.with_(operation="edit" if edits else "generate", seed=view.seed, psi=view.psi,
                      noise_mode=view.noise_mode, class_idx=view.class_idx, edits=edits,
                      details={} if transform is None else {"transform": transform.tolist()})


def command(view: View, net: ServedNetwork, session: Session) -> str:
    """The command line that writes the view's image."""
    net_arg = ["--network", net.source]
    common = [*([] if view.noise_mode == "const" else ["--noise-mode", view.noise_mode]),
              *([] if view.class_idx is None else ["--class", str(view.class_idx)])]
    if view.view == "mix":
        m = view.mix
        if m is None:
            raise ValueError("a mixing view needs rows, cols and styles")
        args = ["stylegan", "mix", *net_arg, "--rows", format_int_list(m.rows), "--cols", format_int_list(m.cols),
                "--styles", format_int_list(sorted(set(m.styles))), "--trunc", repr(view.psi), *common,
                "--outdir", "mix"]
        return _join(args)
    edits = [e.spec.text(e.shown) for e in resolve_edits(view, net, session)]
    if view.view == "photo":
        return photo_steps.command(net.source, session.photo_name or "photo.png", _projected(view, net, session),
                                   edits, view.paste_back)
    pose = []
    if view.transform(net) is not None:
        pose = ["--translate", f"{view.translate[0]!r},{view.translate[1]!r}", "--rotate", repr(view.rotate)]
    if not edits:
        return _join(["stylegan", "generate", *net_arg, "--seeds", str(view.seed), "--trunc", repr(view.psi),
                      *common, *pose, "--outdir", "out"])
    return _join(["stylegan", "edit", *net_arg, "--seeds", str(view.seed), "--trunc", repr(view.psi), *common, *pose,
                  *[a for e in edits for a in ("--edit", e)], "--together", "--outdir", "edits"])


def _join(args: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in args)


def file_stem(view: View, net: ServedNetwork, session: Session) -> str:
    """A download's name without suffix, as the command line would name the file."""
    if view.view == "mix":
        return f"{net.name}-mix"
    if view.view == "photo":
        return f"{net.name}-{(session.photo_name.rsplit('.', 1)[0] or 'photo')}-edited"
    return f"{net.name}-seed{view.seed:04d}" + ("-edited" if view.active_edits() else "")
