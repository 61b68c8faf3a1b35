"""Imports only point down: read every import of the library (module level and inside functions) and
check it against the layers, so that an upward import, or a loop hidden in a function, fails here."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The parts of `stylegan` from the bottom up: a part may import only parts of a lower rank. Networks
# and hub share a rank, so neither imports the other: names of both registries meet in loaders.
# Training data sets read and align photos, so they sit above faces. Provenance (records, watermark,
# signing) is encoding every image writer uses, so it sits below io. Metrics look through inversion's
# LPIPS and read data sets, so they sit beside the pipelines (training, above both, calls them).
RANKS = {
    "_errors": 0, "_version": 0, "images": 0, "progress": 0, "distributed": 0,
    "provenance": 1, "seeds": 1, "_memory": 1,   # these name their parameters in errors (_errors)
    "io": 1.5,                # files in and out (atomic outputs, images, video, run records, tagged formats)
    "networks": 2, "hub": 2,  # hub downloads through io's atomic outputs
    "faces": 3,
    "loaders": 3.5,           # reads the model format through io's tagged files
    "inversion": 4, "editing": 4, "data": 4,
    "pipelines": 5, "metrics": 5,
    "training": 6,            # above every part it calls, metrics (at each snapshot) included
    "serve": 6,               # the explorer's server: a front of its own, over pipelines
    "": 7, "__main__": 7,     # the package's front (stylegan/__init__.py) and `python -m stylegan`
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    base = REPO.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: Path, module_level_only: bool = False) -> list[tuple[str, int]]:
    """(absolute module imported, line) for every import statement in the file at `path` (or only
    those at module level). `from .x import y` counts as importing x.y when y is a module, else x."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    found = []
    for node in tree.body if module_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            for a in node.names:
                sub = f"{module}.{a.name}"
                found.append((sub if is_module(sub) else module, node.lineno))
    return found


def library_files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def part(module: str) -> str:
    """'stylegan.pipelines.edit' -> 'pipelines'; 'stylegan' (its front) -> ''."""
    return module.split(".")[1] if module.count(".") else ""


def test_stylegan_imports_point_down():
    upward = []
    for path in library_files("stylegan"):
        here = part(module_name(path))
        assert here in RANKS, f"{path.relative_to(REPO)}: a new part of the package; give {here!r} a rank in RANKS"
        for target, line in imports(path):
            if target.split(".")[0] == "scripts" and here != "__main__":
                upward.append(f"{path.relative_to(REPO)}:{line} imports {target}: the library never imports the CLI")
            if target.split(".")[0] != "stylegan" or part(target) == here:
                continue
            there = part(target)
            if RANKS.get(there, 99) >= RANKS[here]:
                upward.append(f"{path.relative_to(REPO)}:{line} imports {target} ({there or 'the package front'}, "
                              f"rank {RANKS.get(there)}) from {here} (rank {RANKS[here]})")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("package", ["ops", "torch_utils"])
def test_lower_packages_know_nothing_of_the_library(package):
    for path in library_files(package):
        for target, line in imports(path):
            assert target.split(".")[0] not in ("stylegan", "scripts"), f"{path.relative_to(REPO)}:{line} {target}"


def test_ops_import_graph_is_acyclic_and_the_cli_uses_the_public_api():
    graph = {}
    for path in (REPO / "ops").glob("*.py"):
        mod = module_name(path)
        graph[mod] = {t for t, _ in imports(path) if t.startswith("ops.") and t != mod}
        nested = graph[mod] - {t for t, _ in imports(path, module_level_only=True)}
        assert not nested, f"{mod} imports {nested} inside a function (a hidden cycle)"
    done, visiting = set(), []

    def visit(mod):
        assert mod not in visiting, f"import cycle: {' -> '.join(visiting + [mod])}"
        if mod in done or mod not in graph:
            return
        visiting.append(mod)
        for dep in graph[mod]:
            visit(dep)
        visiting.pop()
        done.add(mod)

    for mod in graph:
        visit(mod)
    private = [t for t, _ in imports(REPO / "scripts" / "ops.py") if t.startswith("ops.")]
    assert not private, private


def test_the_reader_sees_what_it_must():
    """The checks above are only as good as the reader: relative, nested and attribute imports."""
    src = REPO / "stylegan" / "io" / "run_record.py"
    found = dict(imports(src))
    assert "stylegan.io.files" in found and "stylegan._version" in found
    nested = {t for t, _ in imports(REPO / "stylegan" / "faces" / "landmarks.py")}
    assert "stylegan.hub" in nested                       # `from .. import hub` inside a function
    assert part("stylegan") == "" and part("stylegan.io.latents") == "io"
