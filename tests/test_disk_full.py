"""A full disk, for every command that writes: one line saying so, and outputs whole or absent.

Two ways to fill a disk: a small tmpfs (where this machine lets the tests mount one: root on
Linux), filled up to a few pages before each command; and, everywhere, a file-size limit
(RLIMIT_FSIZE) in a subprocess. Both leave each command partway through its outputs. After it:
the command failed with exactly one error line naming the cause and no traceback; no temporary or
claim is left; every file is whole (is_complete reads its end); and files that belong together
(an image and its w, a crop and its record, a strip and its video, a target's projection files, a
mixing grid and its cells) are all there or all gone."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, reference_path
from stylegan.io import files as io_files

PAGE = 4096


def _dlib() -> bool:
    try:
        import dlib  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """What the commands read (kept off the small disk): the fixture network, two in-domain
    targets and a photo with a face."""
    import stylegan
    folder = tmp_path_factory.mktemp("inputs")
    net = reference_path("sg2ada_skip.pkl")
    G = stylegan.load(net)["G_ema"]
    (folder / "targets").mkdir()
    for s in (5, 6):
        Image.fromarray(stylegan.generate(G, [s])[0]).save(folder / "targets" / f"t{s}.png")
    if _dlib():
        from skimage import data
        Image.fromarray(data.astronaut()).save(folder / "astronaut.png")
    return {"net": net, "targets": folder / "targets", "photo": folder / "astronaut.png"}


def commands(inputs, out: Path) -> dict[str, tuple[list, int]]:
    """name -> (arguments writing into `out`, pages left free on the tmpfs before it runs)."""
    net, cmds = inputs["net"], {}
    cmds["generate"] = (["generate", "--network", net, "--seeds", "0-7", "--save-w", "--outdir", out], 4)
    cmds["convert"] = (["convert", net, out / "net.stylegan"], 16)
    cmds["directions"] = (["directions", "sefa", "--network", net, "--out", out / "d.direction"], 0)
    cmds["mix"] = (["mix", "--network", net, "--rows", "0,1", "--cols", "2,3", "--save-cells", "--outdir", out], 2)
    cmds["video"] = (["video", "--network", net, "--seeds", "0,1", "--frames-per-seed", "30", "--out",
                      out / "walk.mp4"], 1)
    cmds["edit"] = (["edit", "--network", net, "--seeds", "0-3", "--edit", "sefa:0:-2,0,2", "--video", "--outdir",
                     out], 12)
    cmds["project"] = (["project", "--network", net, "--target", inputs["targets"], "--steps", "2", "--no-identity",
                        "--outdir", out], 8)
    if _dlib():
        cmds["align"] = (["align", inputs["photo"], "--size", "64", "--outdir", out], 1)
    return {k: ([str(a) for a in args], pages) for k, (args, pages) in cmds.items()}


def check(name: str, out: Path, exit_code: int, output: str, cause: str) -> None:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert exit_code != 0 and "Traceback" not in output, (name, output)
    assert len(errors) == 1 and errors[0] == lines[-1] and cause in errors[0].lower(), (name, output)
    found = [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else []
    leftovers = [p.name for p in found if io_files._TEMP.match(p.name) or io_files._CLAIM.match(p.name)]
    assert not leftovers, (name, leftovers)
    assert all(io_files.is_complete(p) for p in found), (name, [p.name for p in found if not io_files.is_complete(p)])
    names = {p.name for p in found}

    def together(*group):
        assert len({g in names for g in group}) == 1, (name, group, sorted(names))
    if name == "generate":
        for s in range(8):
            together(f"seed{s:04d}.png", f"seed{s:04d}.w.safetensors")
    elif name == "align":
        together("astronaut.png", "astronaut.align.json")
    elif name == "edit":
        for s in range(4):
            together(f"seed{s:04d}_sefa0.png", f"seed{s:04d}_sefa0.mp4")
    elif name == "mix":
        together("grid.png", *(f"{r}-{c}.png" for r in (0, 1) for c in (2, 3)))
    elif name == "project":
        from stylegan.pipelines.project import output_names
        for t in ("t5", "t6"):
            together(*output_names(t))
        if "metrics.csv" in names:
            rows = (out / "metrics.csv").read_text().splitlines()[1:]
            assert sorted(r.split(",")[0] for r in rows) == sorted(t for t in ("t5", "t6")
                                                                  if f"{t}_compare.png" in names), rows


# --- a small tmpfs --------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("no tmpfs to mount here")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode(errors='replace').strip()})")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def leave_free(disk: Path, pages: int) -> None:
    """Fill the disk up to `pages` free pages."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler", "wb") as f:
        f.truncate(0)
        f.write(b"\0" * max(free - pages * PAGE, 0))


def test_full_tmpfs_every_command(inputs, small_disk):
    from click.testing import CliRunner
    from scripts.cli import main
    for name, (args, pages) in commands(inputs, small_disk / "out").items():
        for p in small_disk.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        (small_disk / "out").mkdir()
        leave_free(small_disk, pages)
        r = CliRunner().invoke(main, args)
        check(name, small_disk / "out", r.exit_code, r.output, "no space left on device")


# --- a file-size limit ------------------------------------------------------------------------------

LIMIT = 2400    # bytes: a w file (2344) fits, no image of the 32 px fixture does

_CHILD = """
import json, resource, sys
from click.testing import CliRunner
import stylegan
from scripts.cli import main
cases = json.loads(sys.argv[1])
G = stylegan.load(cases["generate"][0][2])["G_ema"]
stylegan.generate(G, [0])     # kernels built or loaded before the limit
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
results = {}
for name, (args, _) in cases.items():
    r = CliRunner().invoke(main, args)
    results[name] = [r.exit_code, r.output]
print(json.dumps(results))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_FSIZE")
def test_file_size_limit_every_command(inputs, tmp_path):
    cases = {}
    for name, (args, pages) in commands(inputs, tmp_path / "PLACEHOLDER").items():
        out = tmp_path / name
        out.mkdir()
        cases[name] = ([a.replace(str(tmp_path / "PLACEHOLDER"), str(out)) for a in args], pages)
    r = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cases), str(LIMIT)], cwd=REPO, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for name, (exit_code, output) in results.items():
        check(name, tmp_path / name, exit_code, output, "file too large")
