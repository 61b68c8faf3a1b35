"""`stylegan serve`: a face explorer in the browser, over the library's own functions.

    from stylegan.serve import load_networks, running
    with running(load_networks(["model.pkl"])) as url:   # a server on a free port, in this process
        ...

Needs the `serve` extra (FastAPI, uvicorn): `pip install "stylegan[serve]"`."""
from __future__ import annotations

import ipaddress
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from .networks import ServedNetwork, load_networks, served

__all__ = ["ServedNetwork", "load_networks", "served", "create_app", "serve", "running", "bind", "url_for", "is_loopback",
           "warm_up"]


def create_app(networks: Sequence[ServedNetwork], **kwargs):
    from .app import create_app as _create_app
    return _create_app(list(networks), **kwargs)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_for(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free one); a ValueError in one line when taken."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        hint = ": pass another --port" if e.errno in (98, 48, 10048) else ""
        raise ValueError(f"cannot listen on {host}:{port} ({e.strerror or e}){hint}") from None
    sock.listen(128)
    return sock


def warm_up(networks: Sequence[ServedNetwork], log: Callable[[str], None] = print) -> None:
    """Render one image per network before the page asks: the first render of a process builds
    or loads the CPU kernels, which would otherwise stall the first slider move."""
    from ..pipelines import generate
    for net in networks:
        start = time.perf_counter()
        generate(net.G, [0], class_idx=0 if net.G.c_dim else None)
        log(f"  {net.name}: {net.G.img_resolution} px, {'StyleGAN3' if net.stylegan3 else 'StyleGAN2'}, "
            f"first image in {time.perf_counter() - start:.1f} s")


def _server(networks: Sequence[ServedNetwork], host: str, provenance=None):
    import uvicorn
    app = create_app(networks, local=is_loopback(host), provenance=provenance)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2,
                            lifespan="on")
    return uvicorn.Server(config)


def serve(networks: Sequence[ServedNetwork], host: str = "127.0.0.1", port: int = 7860, open_browser: bool = False,
          log: Callable[[str], None] = print, provenance=None) -> None:
    """Serve until interrupted (Ctrl-C). Every image carries `provenance` (a `stylegan.provenance.
    Provenance`: the watermark choice, the signer; default the watermark on) with what made it."""
    sock = bind(host, port)
    url = url_for(host, sock.getsockname()[1])
    server = _server(networks, host, provenance)
    if open_browser:
        import webbrowser
        threading.Timer(0.5, webbrowser.open, [url]).start()
    log(f"stylegan explorer at {url}  (Ctrl-C stops it)")
    server.run(sockets=[sock])


@contextmanager
def running(networks: Sequence[ServedNetwork], host: str = "127.0.0.1", port: int = 0,
            provenance=None) -> Iterator[str]:
    """A server on a background thread for the block; yields its URL (tests, benchmarks, notebooks)."""
    sock = bind(host, port)
    server = _server(networks, host, provenance)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="stylegan-serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the explorer server did not start")
            time.sleep(0.02)
        yield url_for(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
