"""The edit pipeline: edit specs, directions by name or file, strips."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stylegan.editing import Direction, save_direction, sefa
from stylegan.images import to_uint8
from stylegan.pipelines.edit import parse_edit, parse_strengths, render_edits, resolve_direction, strip

from conftest import fixture_model, reference_path, serving_bytes


def test_parse_edit():
    e = parse_edit("smile.npy:-3..3", values=7)
    assert (e.source, e.component, e.rows) == ("smile.npy", 0, None)
    np.testing.assert_allclose(e.strengths, np.linspace(-3, 3, 7))
    e = parse_edit("sefa:2@0-3:5")
    assert (e.source, e.component, e.rows, e.strengths) == ("sefa", 2, [0, 1, 2, 3], [5.0])
    e = parse_edit("dirs/pca.direction:1:-2,0,2.5")
    assert (e.source, e.component, e.strengths) == ("dirs/pca.direction", 1, [-2.0, 0.0, 2.5])
    assert parse_strengths("1e-1") == [0.1]
    for bad in ["smile.npy", ":3", "smile.npy:abc", "smile.npy:1..", "sefa@x:1", "a:nan", "a:inf"]:
        with pytest.raises(ValueError):
            parse_edit(bad)


@pytest.mark.slow
def test_render_edits_by_name_and_file(tmp_path):
    G = fixture_model()["G_ema"]
    ws = G.mapping(torch.from_numpy(np.random.RandomState(0).randn(2, G.z_dim)), None)
    d = Direction(torch.nn.functional.normalize(torch.randn(3, G.w_dim), dim=1))
    save_direction(d, tmp_path / "d.direction")
    specs = [parse_edit("sefa:1@0-3:-2,0,2"), parse_edit(f"{tmp_path / 'd.direction'}:2:0,1")]
    a, b = render_edits(G, ws, specs)
    assert a.shape == (3, 2, 32, 32, 3) and b.shape == (2, 2, 32, 32, 3)
    np.testing.assert_array_equal(a[1], b[0])                # strength 0 is the input, whatever the edit

    def moved(vector, rows, strength):
        """The images of ws with only `rows` moved by strength * vector."""
        w = ws.clone()
        w[:, rows] += strength * vector
        with torch.no_grad():
            return to_uint8(G.synthesis(w, noise_mode="const"))

    # sefa:1@0-3 moves rows 0-3, and only those, along SeFa's component 1 of those rows' affines.
    v = sefa(G, [0, 1, 2, 3], num_components=16).vectors[1]
    for k, strength in enumerate([-2, 0, 2]):
        np.testing.assert_array_equal(a[k], moved(v, [0, 1, 2, 3], strength))
    # ...which is not what another component or other rows would give.
    assert not np.array_equal(a[2], moved(sefa(G, [0, 1, 2, 3], num_components=16).vectors[0], [0, 1, 2, 3], 2))
    assert not np.array_equal(a[2], moved(v, list(range(G.num_ws)), 2))
    assert not np.array_equal(a[2], moved(v, [0, 1, 2], 2))
    # A file's direction without rows moves every row, along the component named (2).
    np.testing.assert_array_equal(b[1], moved(d.vectors[2], list(range(G.num_ws)), 1))
    assert strip(a[:, 0]).shape == (32, 96, 3)
    with pytest.raises(ValueError, match="component 7 out of range"):
        resolve_direction(parse_edit(f"{tmp_path / 'd.direction'}:7:1"), G)
    small = Direction(torch.ones(1, 8))
    save_direction(small, tmp_path / "small.direction")
    with pytest.raises(ValueError, match="8 dimensions"):
        resolve_direction(parse_edit(f"{tmp_path / 'small.direction'}:1"), G)
    with pytest.raises(ValueError, match="no such file"):
        resolve_direction(parse_edit("missing.npy:1"), G)
    with pytest.raises(ValueError, match="out of range"):
        render_edits(G, ws, [parse_edit("sefa@0-99:1")])


def test_strips_and_grids_caption_their_strengths(tmp_path, G):
    """Each strip is its frames under a band naming each strength; the grid stacks the inputs' frames
    under one band; read_strip gives back exactly the frames rendered."""
    import json
    from PIL import Image
    from stylegan.images import caption_height
    from stylegan.io.run_record import RUN_RECORD, RunMismatchError
    from stylegan.pipelines.edit import edit_settings, read_strip, write_edits
    ws = G.mapping(torch.from_numpy(np.random.RandomState(1).randn(2, G.z_dim)), None)
    spec = parse_edit("sefa:0:-2,0,2")
    settings = edit_settings("n", [spec], {"a": {}, "b": {}})
    write_edits(G, ws, ["a", "b"], [spec], tmp_path, settings=settings, grid=True)
    (want,) = render_edits(G, ws, [spec])                                    # [S, N, H, W, C]
    top = caption_height(32)
    strips = [np.asarray(Image.open(tmp_path / f"{n}_sefa0.png")) for n in "ab"]
    for k, s in enumerate(strips):
        assert s.shape == (top + 32, 3 * 32, 3)
        np.testing.assert_array_equal(read_strip(tmp_path / f"{'ab'[k]}_sefa0.png", 3), want[:, k])
    band = strips[0][:top]
    np.testing.assert_array_equal(strips[1][:top], band)                   # the band names strengths, not inputs
    columns = np.split(band, 3, axis=1)
    assert all(c.max() > 128 for c in columns)                             # each strength has its caption
    assert not np.array_equal(columns[0], columns[2]) and not np.array_equal(columns[0], columns[1])
    grid = np.asarray(Image.open(tmp_path / "grid_sefa0.png"))
    assert grid.shape == (top + 2 * 32, 3 * 32, 3)
    np.testing.assert_array_equal(grid[:top], band)
    np.testing.assert_array_equal(grid[top:], np.concatenate([s[top:] for s in strips], axis=0))
    # A folder whose record predates captions is not resumed as if its strips had them.
    record = json.loads((tmp_path / RUN_RECORD).read_text())
    del record["strip"]
    (tmp_path / RUN_RECORD).write_text(json.dumps(record))
    with pytest.raises(RunMismatchError, match="strip"):
        write_edits(G, ws, ["a", "b"], [spec], tmp_path, settings=settings)


def test_registry_direction_by_name(tmp_path, monkeypatch):
    """A direction the registry lists is fetched once (here from a loopback server) and applied by
    name; another kind of registry entry is refused in one line."""
    import io
    from stylegan import hub
    from stylegan.hub import registry

    G = fixture_model()["G_ema"]
    vector = torch.randn(1, G.w_dim)
    buf = io.BytesIO()
    torch.save(vector, buf)                 # the e4e/PTI layout: a [1, w_dim] tensor
    body = buf.getvalue()

    with serving_bytes(body) as url:
        entry = hub.Entry("test-smile", "direction", f"{url}/smile.pt", "test",
                          "https://example.invalid", "a test direction", format="e4e-pt", size=len(body))
        gan = hub.Entry("test-gan", "gan", "http://127.0.0.1:9/x.pkl", "test", "https://example.invalid", "a GAN",
                        format="nvidia-pickle")
        monkeypatch.setattr(registry, "ENTRIES", (entry, gan))
        monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        d = resolve_direction(parse_edit("test-smile:-1,1"), G)
        torch.testing.assert_close(d.vectors, torch.nn.functional.normalize(vector, dim=1))
        assert hub.cached("test-smile") is not None
        with pytest.raises(ValueError, match="test-gan: a gan model in the registry, not a direction"):
            resolve_direction(parse_edit("test-gan:1"), G)


@pytest.mark.parametrize("text, label", [("sefa:1@0-3:-2,2", "sefa1_rows0-3"), ("smile.npy:-3..3", "smile0"),
                                         ("dirs/pca.direction:2@4-7:1", "pca2_rows4-7")])
def test_edit_labels_are_safe_file_names(text, label):
    """Output files are named NAME_LABEL.png: the label says source, component and rows in letters,
    digits, '_' and '-' only (no '@')."""
    import re
    got = parse_edit(text).label
    assert got == label and re.fullmatch(r"[A-Za-z0-9_-]+", got)


def test_edit_text_round_trips():
    """An edit written back as --edit text parses to the same edit, strengths exactly."""
    from stylegan.pipelines.edit import format_int_list
    for text in ["sefa:2@0-3:-5..5", "smile.npy:1.5", "a.pt:3@0-2,5:0.1,0.30000000000000004", "b:0@7:-0.0"]:
        spec = parse_edit(text)
        assert parse_edit(spec.text()) == spec
    assert parse_edit("x.npy:1@2-3:2").text("y z.npy") == "y z.npy:1@2-3:2.0"
    assert format_int_list([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10" and format_int_list([]) == ""


def test_edit_into_folder_is_what_the_command_writes(tmp_path):
    """The command is a front over the library call: same inputs, same pixels, same files."""
    from PIL import Image
    from stylegan.pipelines import edit_into_folder, seed_inputs_for
    from stylegan.pipelines.edit import read_strip
    from conftest import run
    G = fixture_model()["G_ema"]
    specs = [parse_edit("sefa:1@0-3:-2,0,2"), parse_edit("sefa:0:1")]
    result = edit_into_folder(G, seed_inputs_for(G, [0, 1], psi=0.5), specs, tmp_path / "lib", grid=True)
    assert sorted(p.name for p in result.summary.written) == [
        "seed0000_sefa0.png", "seed0000_sefa1_rows0-3.png", "seed0001_sefa0.png", "seed0001_sefa1_rows0-3.png"]
    r = run("edit", "--network", reference_path("sg2ada_skip.pkl"), "--seeds", "0-1", "--trunc", "0.5",
            "--edit", "sefa:1@0-3:-2,0,2", "--edit", "sefa:0:1", "--grid", "--outdir", tmp_path / "cli")
    assert r.exit_code == 0, r.output
    made = sorted(p.name for p in (tmp_path / "cli").glob("*.png"))
    assert made == sorted(p.name for p in (tmp_path / "lib").glob("*.png"))
    for name in made:
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "cli" / name)),
                                      np.asarray(Image.open(tmp_path / "lib" / name)))
    # Strength 0 of the first edit is seed 1's image at psi 0.5.
    from stylegan.pipelines import generate
    np.testing.assert_array_equal(read_strip(tmp_path / "lib" / "seed0001_sefa1_rows0-3.png", 3)[1],
                                  generate(G, [1], psi=0.5)[0])
    # Together: one image per input, and an existing one is refused naming overwrite.
    paths = edit_into_folder(G, seed_inputs_for(G, [0], psi=0.5), specs[1:], tmp_path / "t", together=True).together
    assert [p.name for p in paths] == ["seed0000_edits.png"]
    with pytest.raises(FileExistsError, match="overwrite"):
        edit_into_folder(G, seed_inputs_for(G, [0], psi=0.5), specs[1:], tmp_path / "t", together=True)
