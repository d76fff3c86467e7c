"""Execute every notebook in notebooks/ (nbdev style), as a reader on a fresh clone would: without the shared
data (``$OLDPHOTO_SHARED_DATA`` points at a missing folder), with the shipped checkpoints.

* every notebook in FAST mode (the cell tagged ``parameters`` is followed by an injected cell that sets
  ``FAST = True`` and ``OUT_DIR`` to a temporary folder);
* the notebooks in ``DEFAULTS`` (all of them) once more with their default parameters: 24-50 s each on the
  2 busy development cores, this whole file about 7 minutes;
* every notebook that can train (a ``TRAIN`` parameter) refuses a test set as training data before it runs
  anything else;
* the committed notebooks are stripped, and their text refers to nothing a reader cannot see.

Set OLDPHOTO_NOTEBOOK_OUT=DIR to keep the executed copies. ``python benchmarks/publish_notebooks.py``
publishes executed copies under results/notebooks/.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
DEFAULTS = ("01", "02", "03", "04", "05", "06")  # notebooks also executed with their default parameters
LIMIT_SECONDS = 300  # a notebook with its defaults finishes within 5 minutes on 2 CPU cores

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def inject_parameters(nb, params: dict) -> None:
    src = "# injected by tests/test_notebooks.py\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(src)
    cell.metadata["tags"] = ["injected-parameters"]
    idx = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if idx is None:
        raise AssertionError("notebook has no cell tagged 'parameters'")
    nb.cells.insert(idx + 1, cell)


def run(path: Path, params: dict):
    nb = nbformat.read(path, as_version=4)
    if params:
        inject_parameters(nb, params)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


@pytest.fixture
def fresh_clone(monkeypatch, tmp_path):
    """No shared data: the kernel inherits ``$OLDPHOTO_SHARED_DATA`` pointing at a missing folder."""
    monkeypatch.setenv("OLDPHOTO_SHARED_DATA", str(tmp_path / "no-shared-data"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))


def parameters_source(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return next(c.source for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))


def test_notebooks_exist():
    assert NOTEBOOKS, "notebooks/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stripped_and_self_contained(path: Path):
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks stripped"
    text = "\n".join(c.source for c in nb.cells)
    assert not re.search(r"\bissue|closing note", text, re.IGNORECASE), "the text refers to something readers cannot see"
    training_cells = [c.source for c in nb.cells if c.cell_type == "code" and "train_stage(" in c.source]
    assert not any("embedded" in src for src in training_cells), "a training cell names a test set"
    assert nb.cells[-1].cell_type == "markdown" and "Exercises" in nb.cells[-1].source, "end with exercises"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_fast(path: Path, tmp_path: Path, fresh_clone):
    nb = run(path, {"FAST": True, "OUT_DIR": str(tmp_path / "out")})
    keep = os.environ.get("OLDPHOTO_NOTEBOOK_OUT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / path.name)


DEFAULT_PATHS = [p for p in NOTEBOOKS if p.name[:2] in DEFAULTS]


@pytest.mark.parametrize("path", DEFAULT_PATHS, ids=[p.name for p in DEFAULT_PATHS])
def test_notebook_executes_with_defaults(path: Path, fresh_clone):
    params = parameters_source(path)
    assert re.search(r"^FAST = False", params, re.MULTILINE)
    assert "TRAIN" not in params or re.search(r"^TRAIN = False", params, re.MULTILINE), "training is opt-in"
    t0 = time.perf_counter()
    run(path, {})
    assert time.perf_counter() - t0 < LIMIT_SECONDS, f"{path.name} took over {LIMIT_SECONDS} s with its defaults"


TRAINING = [p for p in NOTEBOOKS if re.search(r"^TRAIN = False", parameters_source(p), re.MULTILINE)]


def test_the_notebooks_that_train():
    assert {p.name[:2] for p in TRAINING} == {"02", "03", "04", "05"}


@pytest.mark.parametrize("test_set", ["embedded", "kodak24"])
@pytest.mark.parametrize("path", TRAINING, ids=[p.name for p in TRAINING])
def test_notebook_refuses_to_train_on_a_test_set(path: Path, test_set: str, tmp_path: Path, fresh_clone):
    if test_set == "kodak24":
        if path.name[:2] != "02":
            pytest.skip("one notebook is enough for a folder named like a test set")
        (tmp_path / "clean" / "kodak24").mkdir(parents=True)
        test_set = str(tmp_path / "clean" / "kodak24")
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="refusing to train on a test set"):
        run(path, {"FAST": True, "OUT_DIR": str(tmp_path / "out"), "TRAIN": True, "TRAIN_DATA": test_set})
