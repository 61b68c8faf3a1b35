"""Shared test fixtures and checks: the reference data made by running NVIDIA's and rosinality's code,
the tolerances against it, and the CPU build of the fused kernels."""
from __future__ import annotations

import copy
import functools
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("STYLEGAN_REFERENCE_DIR", REPO.parent / "shared" / "reference"))

NVIDIA_FIXTURES = ["sg2ada_skip", "sg2ada_resnet_cond", "sg2ada_orig", "sg3_sg2", "sg3_t", "sg3_r"]
SG2_FIXTURES = ["sg2ada_skip", "sg2ada_resnet_cond", "sg2ada_orig", "sg3_sg2"]
SG3_FIXTURES = ["sg3_t", "sg3_r"]

# Every computed value (ws, images, logits, taps) against a fixture: float32 sums run in another order
# on another instruction set, and NVIDIA's own code moved by 2.7e-6 on an AVX-512 machine against
# fixtures made on an AVX2 one (reference README, Tolerances). Copied weights stay exact, and two
# computations on the same machine are compared bit for bit where the code promises it.
IMG_ATOL = 1e-5


def reference_path(name: str) -> Path:
    path = REFERENCE_DIR / name
    if not path.exists():
        # Locally a missing fixture folder skips; in CI it must never pass silently.
        message = f"reference fixture {path} not found (set STYLEGAN_REFERENCE_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def load_npz(name: str) -> dict[str, np.ndarray]:
    with np.load(reference_path(f"{name}.npz"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def prefixed(npz: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    """State dict stored under `prefix/` in a fixture npz, in its original order."""
    n = len(prefix) + 1
    return {k[n:]: torch.from_numpy(v) for k, v in npz.items() if k.startswith(prefix + "/")}


def init_kwargs(npz: dict[str, np.ndarray], key: str = "init_kwargs") -> dict:
    return json.loads(str(npz[key]))


def within(seconds: int, fn):
    """fn(), failed (not hung) if it takes longer: e.g. a read of a FIFO would block forever."""
    import signal

    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def dead_pid() -> int:
    """The PID of a process that has exited (as a writer killed outright leaves in its temp names)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


def cpu_kernel(name: str):
    """The compiled CPU kernel `name` (ops/cpu/), built or found cached: a failed build fails the test.
    Modules using it skip where no kernel can be built (`requires_cpu_kernels`)."""
    from ops import _cpu
    result = _cpu.build(name)
    assert result.status != "failed", result.reason
    return _cpu.load(name)


def _cpu_kernel_problem():
    from ops import _cpu
    return _cpu.problem()


requires_cpu_kernels = pytest.mark.skipif(_cpu_kernel_problem() is not None,
                                          reason=f"no CPU kernel build here: {_cpu_kernel_problem()}")


@pytest.fixture(scope="session")
def K():
    """The CPU build of the fused kernels' maths (tests/cpu_kernels.py), built once per source hash."""
    if shutil.which("c++") is None and shutil.which("g++") is None:
        pytest.skip("no C++ compiler to build the CPU emulation of the kernels")
    import cpu_kernels
    return cpu_kernels.load()


@pytest.fixture
def emulated(K, monkeypatch):
    """Route impl='cuda' on CPU tensors through the emulated kernels."""
    from ops import cuda_ops
    monkeypatch.setattr(cuda_ops, "kernels", lambda name, x: K)
    return K


def uint8_bounds(ref: np.ndarray | torch.Tensor, atol: float = IMG_ATOL) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest pixels [N, H, W, C] that a float image within `atol` of `ref` [N, C, H, W] can give.

    A pixel is x * 127.5 + 128 clamped and truncated, a monotone step function of x, so the range is
    that of the two ends of the interval. The margin adds a few float32 ulps at 256 for the two rounded
    steps of the conversion (2**-14, far below the 1.3e-3 that atol contributes)."""
    v = np.moveaxis(np.asarray(ref, dtype=np.float64), 1, -1) * 127.5 + 128
    margin = atol * 127.5 + 2.0 ** -14
    return np.clip(np.floor(v - margin), 0, 255), np.clip(np.floor(v + margin), 0, 255)


def assert_uint8_matches(got: np.ndarray, ref: np.ndarray | torch.Tensor, atol: float = IMG_ATOL) -> None:
    """uint8 images [N, H, W, C] against the float reference [N, C, H, W] they quantise.

    Float images agree to `atol` across CPUs, not bit for bit, so a pixel may be one level off, but
    only where the reference lies within atol of a level boundary; everywhere else it must equal the
    reference's pixel. (No share-of-pixels budget: how many pixels sit near a boundary is chance.)"""
    lo, hi = uint8_bounds(ref.numpy() if isinstance(ref, torch.Tensor) else ref, atol)
    assert got.dtype == np.uint8 and got.shape == lo.shape, (got.dtype, got.shape, lo.shape)
    bad = (got < lo) | (got > hi)
    assert not bad.any(), (f"{bad.sum()} of {bad.size} pixels are not what a float image within {atol} of the "
                           f"reference gives (first at {np.argwhere(bad)[0].tolist()})")


@contextlib.contextmanager
def serving_bytes(body: bytes):
    """A loopback HTTP server answering every GET with `body`, for the block; yields its base URL
    (downloads are tested without the internet)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item (item.rep_setup / rep_call / rep_teardown), so a fixture
    can act on a failure: the browser tests take a screenshot."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def output_dir() -> Path:
    """Where tests leave files worth looking at (screenshots): STYLEGAN_TEST_OUTPUT, else tests/output."""
    folder = Path(os.environ.get("STYLEGAN_TEST_OUTPUT", REPO / "tests" / "output"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def net256(tmp_path_factory):
    """A random-weight StyleGAN2 at 256 px, the smallest size the watermark takes, as a file. Its
    output layers are scaled down: random weights clip 40-70 % of the pixels at 0 or 255, where no
    mark can move them (benchmarks/watermark.py measures that case); a trained face generator's
    images are like photos, and so, with this, are these. (Provenance and explorer tests.)"""
    import stylegan
    torch.manual_seed(1)
    G = stylegan.create_model("stylegan2", z_dim=32, w_dim=32, c_dim=0, img_resolution=256, img_channels=3,
                              mapping_kwargs={"num_layers": 1},
                              synthesis_kwargs={"channel_base": 256, "channel_max": 16, "conv_clamp": 256}).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if ".torgb.weight" in name:
                p.mul_(0.35)
    path = tmp_path_factory.mktemp("net") / "g256.stylegan"
    stylegan.save({"G_ema": G}, path)
    return path


@pytest.fixture(scope="module")
def detector():
    """dlib's landmarks with the 68-point model of face-recognition-models (skipped without; CI fails)."""
    pytest.importorskip("dlib")
    from stylegan.faces.landmarks import DlibLandmarks, packaged_model
    if packaged_model("landmarks-68") is None:
        if os.environ.get("CI"):
            pytest.fail("face-recognition-models is not installed")
        pytest.skip("face-recognition-models is not installed")
    return DlibLandmarks()


def pytest_configure(config):
    # tests/gpu: the few small launches that racecheck and synccheck run (tests/gpu/sanitize.sh)
    config.addinivalue_line("markers", "small: a few small launches, the cases racecheck and synccheck run")
    # `pytest -m "not slow" tests`: a smoke test that leaves out the tests of 5 s and more (gradchecks,
    # projections, pivotal tuning, resumed runs)
    config.addinivalue_line("markers", "slow: takes 5 s or more on a 2-core machine")


# --- the command line and the fixture networks, shared by every test module -----------------------

def run(*args):
    """A `stylegan` command run in this process: run("generate", "--network", path, ...)."""
    from click.testing import CliRunner
    from scripts.cli import main
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *words) -> str:
    """A command that failed with one line (no traceback) holding each of `words`; that line."""
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for w in words:
        assert w in result.output, result.output
    return lines[0]


@functools.lru_cache(maxsize=None)
def _fixture_model(name: str):
    import stylegan
    return stylegan.load(reference_path(f"{name}.pkl"))


def fixture_model(name: str = "sg2ada_skip"):
    """A fixture pickle's networks, read once per session; each call gives its own copy, so a test
    may tune or change it without reaching the next."""
    return copy.deepcopy(_fixture_model(name))


@pytest.fixture(scope="module")
def G():
    """sg2ada_skip's G_ema, the network most tests use (a module's own copy)."""
    return fixture_model()["G_ema"]


# --- inputs more than one test module builds ------------------------------------------------------

def make_zip(path, images, labels=None, names=None):
    """A data set zip as NVIDIA's dataset_tool writes it: uint8 arrays as PNGs (default names
    00000/img00000000.png, ...), and labels in dataset.json when given."""
    names = names or [f"{k // 1000:05d}/img{k:08d}.png" for k in range(len(images))]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, a in zip(names, images):
            z.writestr(name, png_bytes(a))
        if labels is not None:
            z.writestr("dataset.json", json.dumps({"labels": [[n, l] for n, l in zip(names, labels)]}))
    return path


def png_bytes(a: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="png")
    return buf.getvalue()


def synthetic_landmarks(eye_l, eye_r, mouth_l, mouth_r) -> np.ndarray:
    """68 points whose eye contours average to eye_l / eye_r and whose outer mouth corners are given."""
    lm = np.zeros([68, 2])
    ring = np.array([[-3, 0], [-1, -1], [1, -1], [3, 0], [1, 1], [-1, 1]], dtype=np.float64)  # sums to 0
    lm[36:42] = np.asarray(eye_l) + ring
    lm[42:48] = np.asarray(eye_r) + ring
    lm[48], lm[54] = mouth_l, mouth_r
    return lm


def real_photos() -> dict[str, np.ndarray]:
    """Two real photos with faces that ship in installed packages (scikit-image, matplotlib)."""
    import matplotlib
    from skimage import data
    from stylegan.faces import read_photo
    hopper = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
    return {"astronaut": data.astronaut(), "grace_hopper": read_photo(hopper)}


class WritingModule(torch.nn.Module):
    """A forward that writes into whatever file it names: running it is what must never happen
    (scripted, it is a TorchScript archive that readers must treat as data)."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target
        self.register_buffer("w", torch.ones(3))

    def forward(self, x):
        mapped = torch.from_file(self.target, shared=True, size=4, dtype=torch.uint8)
        mapped.fill_(88)
        return x * self.w + mapped.float().sum() * 0
