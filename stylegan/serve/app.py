"""The explorer's web app: JSON and PNG endpoints over the library, and the page that drives them.

Every endpoint but the page itself wants the page's session (header `X-Session`; the event stream,
which cannot send headers, takes `?session=`). Requiring a custom header also means another web
site cannot drive the server from a visitor's browser: the browser must ask first, and the server
never allows it. Errors come back as `{"error": "one line"}`."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import traceback
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import hub
from .._version import __version__
from .._errors import first_line
from ..editing import load_direction
from ..faces import NoFaceError
from ..faces.photo import read_photo
from ..io.latents import save_latents
from ..networks.styles import num_style_channels
from ..pipelines.edit import EditSpec, resolve_direction
from ..io.image_files import encode_image
from ..provenance import Provenance
from . import photo as photo_steps
from . import views
from .jobs import Job
from .networks import ServedNetwork
from .renderer import Renderer, Superseded
from .sessions import Session, Sessions, Upload

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 25 * 2 ** 20
# Uploaded photos past this many pixels are refused from the header, before decoding (a
# decompression bomb is a small file that decodes to gigabytes); 50 Mpx is a large camera's photo.
MAX_PHOTO_PIXELS = 50_000_000
MAX_PROJECT_STEPS = 10_000
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: str = Field(max_length=200)
    face: int = Field(0, ge=0)
    space: Literal["w", "w+"] = "w"
    steps: int = Field(500, ge=1, le=MAX_PROJECT_STEPS)
    pti_steps: int = Field(0, ge=0, le=MAX_PROJECT_STEPS)


class DirectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    network: str = Field(max_length=200)
    direction: str = Field(max_length=200)       # 'sefa', 'ganspace' or 'registry:NAME'


class Explorer:
    """The server's state: the networks it offers, the pages' sessions, the render thread, and what
    every image it hands out carries (`provenance`: the watermark choice and the signer)."""

    def __init__(self, networks: list[ServedNetwork], temp_root: Path | None = None,
                 provenance: Provenance | None = None):
        if not networks:
            raise ValueError("the explorer needs at least one network")
        self.networks = {net.name: net for net in networks}
        self.provenance = provenance or Provenance()
        # Images on screen carry the facts and the watermark (so a download is the pixels shown);
        # a signature goes on downloads only: it covers a file, and costs a signing per frame.
        self.shown = self.provenance.with_(signer=None)
        self.sessions = Sessions(temp_root)
        self.renderer = Renderer()

    def network(self, name: str) -> ServedNetwork:
        net = self.networks.get(name)
        if net is None:
            raise ApiError(404, f"no network {name!r} on this server (it offers {', '.join(self.networks)})")
        return net

    def close(self) -> None:
        self.renderer.close()
        self.sessions.close()


def create_app(networks: list[ServedNetwork], *, local: bool = True, temp_root: Path | None = None,
               provenance: Provenance | None = None) -> FastAPI:
    """The app serving `networks`. `local`: answer only requests addressed to this machine's
    loopback names (a web page elsewhere cannot rebind a name of its own to 127.0.0.1 and read
    from here). Every image served carries `provenance` (default: the watermark on, no signer)
    with what made it filled in, as the command line's images do."""
    explorer = Explorer(networks, temp_root, provenance)

    @asynccontextmanager
    async def lifespan(app):
        yield
        explorer.close()

    app = FastAPI(title="stylegan explorer", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.explorer = explorer
    if local:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_HOSTS)

    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return JSONResponse({"error": e.message}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    def session(request: Request) -> Session:
        sid = request.headers.get("x-session") or request.query_params.get("session")
        found = explorer.sessions.get(sid)
        if found is None:
            raise ApiError(401, "this page's session has ended: reload the page")
        return found

    async def on_render_thread(client, work):
        """Run `work` on the render thread; library ValueErrors become one-line 400s."""
        try:
            return await asyncio.wrap_future(explorer.renderer.submit(client, work))
        except Superseded:
            raise
        except (ValueError, KeyError) as e:
            raise ApiError(400, first_line(e)) from None
        except Exception as e:
            traceback.print_exc()
            raise ApiError(500, f"{type(e).__name__}: {first_line(e)}") from None

    # --- the page ---------------------------------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return Response(status_code=204)

    @app.post("/api/session")
    async def new_session(request: Request):
        if "x-session" not in request.headers:    # the custom header keeps other sites' pages out
            raise ApiError(400, "a new session is asked for with the header X-Session: new")
        s = explorer.sessions.create()
        return {"session": s.id, "version": __version__,
                "networks": [net.describe() for net in explorer.networks.values()]}

    @app.get("/api/networks")
    async def list_networks(s: Session = Depends(session)):
        return [net.describe() for net in explorer.networks.values()]

    # --- pictures ---------------------------------------------------------------------------------
    @app.post("/api/render")
    async def render(view: views.View, s: Session = Depends(session)):
        net = explorer.network(view.network)
        start = time.perf_counter()

        def work():
            return encode_image(views.render(view, net, s), "png", views.provenance(view, net, s, explorer.shown),
                                compress_level=1)
        try:
            png = await on_render_thread(s.id, work)
        except Superseded:
            return Response(status_code=204)
        return Response(png, media_type="image/png", headers={
            "Cache-Control": "no-store", "X-Render-Ms": f"{(time.perf_counter() - start) * 1e3:.1f}"})

    @app.post("/api/command")
    async def command(view: views.View, s: Session = Depends(session)):
        net = explorer.network(view.network)
        try:
            return {"command": views.command(view, net, s)}
        except ValueError as e:
            raise ApiError(400, first_line(e)) from None

    @app.post("/api/download/image")
    async def download_image(view: views.View, s: Session = Depends(session)):
        net = explorer.network(view.network)

        filename = views.file_stem(view, net, s) + ".png"

        def work():
            made = views.provenance(view, net, s, explorer.provenance).with_(
                details={"command": views.command(view, net, s), "view": json.loads(view.model_dump_json())})
            return encode_image(views.render(view, net, s), "png", made, filename)
        png = await on_render_thread((s.id, "download"), work)
        return Response(png, media_type="image/png", headers=_attachment(filename))

    @app.post("/api/download/latent")
    async def download_latent(view: views.View, s: Session = Depends(session)):
        net = explorer.network(view.network)
        stem = views.file_stem(view, net, s)

        def work():
            value, space = views.latent(view, net, s)
            path = s.folder / f"{stem}.w.safetensors"
            extra = {"command": views.command(view, net, s), "view": json.loads(view.model_dump_json())}
            if view.view == "photo":
                extra["note"] = "made for the projection's generator (its noise maps, and tuned weights with PTI)"
            save_latents(path, value, space=space, network_digest=net.digest,
                         psi=None if view.view == "photo" else view.psi,
                         source=f"photo {s.photo_name}" if view.view == "photo" else f"seed {view.seed}",
                         extra=extra, overwrite=True)
            try:
                return path.read_bytes()
            finally:
                path.unlink(missing_ok=True)
        data = await on_render_thread((s.id, "download"), work)
        return Response(data, media_type="application/octet-stream", headers=_attachment(f"{stem}.w.safetensors"))

    # --- directions -------------------------------------------------------------------------------
    @app.get("/api/directions")
    async def directions(network: str, s: Session = Depends(session)):
        net = explorer.network(network)
        out = [{"id": "sefa", "label": "SeFa", "space": "w", "components": 16, "rows": None, "ready": True},
               {"id": "ganspace", "label": "GANSpace", "space": "w", "components": 16, "rows": None,
                "ready": ("ganspace",) in net.directions}]
        for entry in hub.entries("direction"):
            if net.registry_name is not None and entry.network == net.registry_name:
                out.append({"id": f"registry:{entry.name}", "label": entry.name, "space": "w", "components": None,
                            "rows": None, "ready": hub.cached(entry.name) is not None})
        for did, upload in s.directions.items():
            out.append(_describe_upload(did, upload, net, s))
        return out

    @app.post("/api/directions")
    async def prepare_direction(body: DirectionIn, s: Session = Depends(session)):
        """Compute GANSpace, or fetch a registry direction, as a job: both take a while."""
        net = explorer.network(body.network)
        if body.direction == "ganspace":
            spec = EditSpec("ganspace", 0, None, [0.0])
        elif body.direction.startswith("registry:"):
            spec = EditSpec(body.direction.split(":", 1)[1], 0, None, [0.0])
        else:
            raise ApiError(400, f"{body.direction!r} needs no preparing")

        def work(progress):
            from ..progress import Progress
            progress(Progress(f"direction {spec.source}", 0, 1))
            d = resolve_direction(spec, net.G, net.directions)
            progress(Progress(f"direction {spec.source}", 1, 1))
            return d
        return _start(s, Job("direction", work))

    @app.post("/api/directions/upload")
    async def upload_direction(request: Request, network: str, s: Session = Depends(session)):
        net = explorer.network(network)
        filename, data = await _read_upload(request)
        path = s.file(filename)
        path.write_bytes(data)
        try:
            d = await asyncio.to_thread(load_direction, path, net.G.w_dim)
            if d.space == "s" and d.dim != num_style_channels(net.G):
                raise ValueError(f"an S direction of {d.dim} channels; {net.name} has {num_style_channels(net.G)}")
        except ValueError as e:
            path.unlink(missing_ok=True)
            raise ApiError(400, f"{filename}: {first_line(e).removeprefix(str(path) + ': ')}") from None
        did = f"upload:{len(s.directions) + 1}"
        s.directions[did] = Upload(path, filename)
        return _describe_upload(did, s.directions[did], net, s, d)

    # --- your photo -------------------------------------------------------------------------------
    @app.post("/api/photo")
    async def upload_photo(request: Request, s: Session = Depends(session)):
        if s.job is not None and s.job.running:
            raise ApiError(409, "a job is running: cancel it or wait for it")
        filename, data = await _read_upload(request)
        path = s.file(filename)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()      # as the command line's file_digest of the photo
        try:
            photo = await asyncio.to_thread(read_photo, path, max_pixels=MAX_PHOTO_PIXELS)
            faces = await asyncio.to_thread(photo_steps.faces_of, photo)
        except NoFaceError:
            raise ApiError(400, f"{filename}: no face found in this photo") from None
        except ValueError as e:
            raise ApiError(400, f"{filename}: {first_line(e).removeprefix(str(path) + ': ')}") from None
        finally:
            path.unlink(missing_ok=True)
        s.photo, s.photo_name, s.photo_digest, s.faces, s.projected = photo, filename, digest, faces, None
        crop = Provenance(kind="photo", operation="align", photo=digest)   # the photo's own pixels
        return {"name": filename, "width": photo.shape[1], "height": photo.shape[0],
                "faces": [{"index": i, "thumbnail": _data_url(f.image, crop),
                           "box": [float(v) for v in (*f.quad.min(axis=0), *f.quad.max(axis=0))]}
                          for i, f in enumerate(faces)]}

    @app.get("/api/photo/image")
    async def photo_image(s: Session = Depends(session)):
        if s.photo is None:
            raise ApiError(404, "no photo uploaded")
        png = await asyncio.to_thread(encode_image, s.photo, "png", Provenance(kind="photo", photo=s.photo_digest),
                                      compress_level=1)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/photo/project")
    async def project_photo(body: ProjectIn, s: Session = Depends(session)):
        net = explorer.network(body.network)
        if s.photo is None or not s.faces:
            raise ApiError(400, "upload a photo with a face first")
        if body.face >= len(s.faces):
            raise ApiError(400, f"face {body.face} out of range: the photo has {len(s.faces)}")
        photo, faces, digest = s.photo, s.faces, s.photo_digest
        made = net.provenance(explorer.shown).with_(kind="synthetic", photo=digest, details={"space": body.space})

        def work(progress):
            return photo_steps.project(net.G, net.D, photo, faces, body.face, network=net.name, space=body.space,
                                       steps=body.steps, pti_steps=body.pti_steps, progress=progress)

        def finish(projected):
            s.projected = projected

        def preview(event):   # the aligned face is the photo's; each step's image the network's
            if event.stage == "align":
                return Provenance(kind="photo", operation="align", photo=digest)
            return made.with_(operation=event.stage)
        return _start(s, Job("project", work, finish, preview))

    # --- jobs -------------------------------------------------------------------------------------
    @app.get("/api/job")
    async def job(s: Session = Depends(session)):
        return s.job.snapshot() if s.job is not None else {"state": "idle"}

    @app.post("/api/job/cancel")
    async def cancel(s: Session = Depends(session)):
        if s.job is not None:
            s.job.cancel()
        return {"state": s.job.state if s.job is not None else "idle"}

    @app.get("/api/job/events")
    async def job_events(request: Request, s: Session = Depends(session)):
        """Server-sent events: the job's state at every change, until it ends."""
        async def stream():
            seq, preview = -1, None
            while True:
                job = s.job
                if job is None:
                    yield "data: " + json.dumps({"state": "idle"}) + "\n\n"
                    return
                if job.seq != seq:
                    snap = job.snapshot()
                    seq = snap["seq"]
                    if snap["preview"] == preview:
                        snap["preview"] = None           # unchanged: not sent again
                    else:
                        preview = snap["preview"]
                    yield "data: " + json.dumps(snap) + "\n\n"
                    if snap["state"] != "running":
                        return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return app


def _start(s: Session, job: Job) -> dict:
    if s.job is not None and s.job.running:
        raise ApiError(409, "a job is running: cancel it or wait for it")
    s.job = job.start()
    return job.snapshot()


def _describe_upload(did: str, upload: Upload, net: ServedNetwork, s: Session, d=None) -> dict:
    if d is None:
        try:
            d = load_direction(upload.path, net.G.w_dim)
        except ValueError as e:
            return {"id": did, "label": upload.filename, "ready": False, "error": first_line(e)}
    return {"id": did, "label": upload.filename, "space": d.space, "components": len(d), "rows": d.layers,
            "ready": True}


async def _read_upload(request: Request, limit: int = MAX_UPLOAD_BYTES) -> tuple[str, bytes]:
    """The raw request body (at most `limit` bytes) and the file name the page sent along."""
    filename = Path(unquote(request.headers.get("x-filename", "upload"))).name[:200] or "upload"
    too_big = ApiError(413, f"{filename}: larger than {limit // 2 ** 20} MB")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    if size == 0:
        raise ApiError(400, f"{filename}: the file is empty")
    return filename, b"".join(chunks)


def _attachment(filename: str) -> dict:
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    return {"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store"}


def _data_url(image, provenance: Provenance) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_image(image, "png", provenance,
                                                                    compress_level=1)).decode()
