"""The explorer's latency in a real browser: slider -> new image on screen, and page load.

For each config (a random-weight network of that size: `stylegan.create_model`), a server runs in
this process and headless Chromium drives the page:
  - page load: navigation start to the first image painted (a fresh browser context each time);
  - slider moves, one at a time: the seed slider's input event to the new image painted, which
    counts the request, mapping, synthesis, PNG encoding, transfer, decoding and paint; beside it
    the server's share (render + encode, its X-Render-Ms);
  - beside them, in the same run (before and after the page's moves), the bare forward pass of the
    same network (mapping + synthesis, no encoding, no server): the page's overhead is the difference;
  - a drag: DRAG positions 16 ms apart (a 60 Hz drag), then the time from the last position to its
    image on screen, for the page as it is (one request in flight, newest position only) and, in
    the same run, for rendering every position in order (what a naive page would queue).

    python benchmarks/serve.py [--config stylegan2-256 stylegan2-1024 stylegan3-t-256] [--moves 30]

Needs the `serve` and `test` extras and a Chromium (Debian's `chromium`, or STYLEGAN_CHROMIUM).
Wall times depend on the machine's load: the load average is printed before and after."""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import stylegan  # noqa: E402
from stylegan.serve import running, served, warm_up  # noqa: E402

ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# One slider move inside the page: the page's own input handler stamps t0 (window.explorer.timings).
MOVE = """(seed) => { const s = document.querySelector('#seed-slider'); s.value = String(seed);
  s.dispatchEvent(new Event('input', { bubbles: true })); return window.explorer.rendered; }"""
DRAG = """async ([seeds, gap]) => { const s = document.querySelector('#seed-slider');
  for (const seed of seeds) { s.value = String(seed); s.dispatchEvent(new Event('input', { bubbles: true }));
    await new Promise(r => setTimeout(r, gap)); }
  return performance.now() - gap; }"""
# The alternative: every position rendered and shown, in order (a queue of stale images).
QUEUE_ALL = """async ([seeds, gap, network]) => {
  const img = document.querySelector('#image'); const st = window.explorer.state;
  const shown = []; let last = 0;
  const one = async (seed) => {
    const r = await fetch('/api/render', { method: 'POST', headers: { 'X-Session': st.session,
      'Content-Type': 'application/json' }, body: JSON.stringify({ network, seed, psi: st.psi }) });
    return r.blob(); };
  let chain = Promise.resolve();
  for (const seed of seeds) {
    chain = chain.then(() => one(seed)).then(async (blob) => { const u = URL.createObjectURL(blob);
      const im = new Image(); im.src = u; await im.decode(); img.src = u;
      await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))); shown.push(performance.now()); });
    last = performance.now(); await new Promise(r => setTimeout(r, gap)); }
  await chain; return shown[shown.length - 1] - (last); }"""


def browser_path() -> str:
    path = os.environ.get("STYLEGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise SystemExit("no Chromium: apt-get install chromium (or set STYLEGAN_CHROMIUM)")
    return path


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def bare_forward(G, seeds) -> list[float]:
    """ms per image of mapping + synthesis alone, one seed at a time (what a slider move needs)."""
    from stylegan.pipelines import map_seeds
    times = []
    with torch.no_grad():
        for seed in seeds:
            start = time.perf_counter()
            G.synthesis(map_seeds(G, [seed], 0.7), noise_mode="const")
            times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(browser, url: str, name: str, G, moves: int, drag: int, loads: int) -> dict:
    out = {"bare": bare_forward(G, range(5000, 5000 + max(3, moves // 3)))}
    load_times = []
    for _ in range(loads):
        ctx = browser.new_context(viewport={"width": 1200, "height": 900})
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_function("window.explorer && window.explorer.rendered >= 1", timeout=300_000)
        # timings[0].shown is relative to the navigation's start (performance.timeOrigin).
        load_times.append(page.evaluate("window.explorer.timings[0].shown"))
        ctx.close()
    out["load"] = load_times

    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function("window.explorer.rendered >= 1", timeout=300_000)
    latencies, server = [], []
    for k in range(moves):
        before = page.evaluate(MOVE, 1000 + k)
        page.wait_for_function(f"window.explorer.rendered > {before}", timeout=300_000)
        t = page.evaluate("window.explorer.timings[window.explorer.timings.length - 1]")
        latencies.append(t["shown"] - t["t0"])
        server.append(t["server_ms"])
        time.sleep(0.05)
    out["move"], out["server"] = latencies, server
    out["bare"] += bare_forward(G, range(6000, 6000 + max(3, moves // 3)))

    seeds = list(range(2000, 2000 + drag))
    last_input = page.evaluate(DRAG, [seeds, 16])
    page.wait_for_function(f"document.querySelector('#image').dataset.seed === '{seeds[-1]}'", timeout=300_000)
    done = page.evaluate("window.explorer.timings[window.explorer.timings.length - 1].shown")
    out["drag_newest"] = done - last_input
    out["drag_all"] = page.evaluate(QUEUE_ALL, [list(range(3000, 3000 + drag)), 16, name])
    ctx.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", default=["stylegan2-256", "stylegan2-1024", "stylegan3-t-256"])
    ap.add_argument("--moves", type=int, default=30, help="single slider moves per config")
    ap.add_argument("--drag", type=int, default=20, help="positions in the drag")
    ap.add_argument("--loads", type=int, default=5, help="page loads per config")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from playwright.sync_api import sync_playwright

    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs), torch threads {torch.get_num_threads()}")
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path(), headless=True, args=ARGS)
        for config in args.config:
            torch.manual_seed(0)
            net = served(config, stylegan.create_model(config))
            warm_up([net], log=lambda line: None)
            with running([net]) as url:
                r = measure(browser, url, config, net.G, args.moves, args.drag, args.loads)
            rows.append((config, r))
            print(f"{config}: slider -> screen median {statistics.median(r['move']):.0f} ms, "
                  f"p95 {pct(r['move'], 95):.0f} ms (server render+encode median {statistics.median(r['server']):.0f} ms, "
                  f"bare forward median {statistics.median(r['bare']):.0f} ms); "
                  f"page load median {statistics.median(r['load']):.0f} ms; "
                  f"{args.drag}-position drag settles in {r['drag_newest']:.0f} ms newest-only, "
                  f"{r['drag_all']:.0f} ms rendering every position", flush=True)
        browser.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\n| network (random weights) | slider -> screen, median | p95 | server render + PNG, median | "
          "bare forward, median | page load, median | drag settles: newest only | every position |")
    print("|---|---|---|---|---|---|---|---|")
    for config, r in rows:
        print(f"| {config} | {statistics.median(r['move']):.0f} ms | {pct(r['move'], 95):.0f} ms | "
              f"{statistics.median(r['server']):.0f} ms | {statistics.median(r['bare']):.0f} ms | "
              f"{statistics.median(r['load']):.0f} ms | {r['drag_newest']:.0f} ms | {r['drag_all']:.0f} ms |")


if __name__ == "__main__":
    main()
