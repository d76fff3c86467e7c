"""Execute every notebook in notebooks/ (nbdev style). The cell tagged ``parameters`` is followed by an
injected cell that sets ``FAST = True`` and ``OUT_DIR`` to a temporary folder, so CI runs them small.

Set OLDPHOTO_NOTEBOOK_OUT=DIR to keep the executed copies (e.g. in results/notebooks).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

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


def test_notebooks_exist():
    assert NOTEBOOKS, "notebooks/ holds no notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks stripped"
    inject_parameters(nb, {"FAST": True, "OUT_DIR": str(tmp_path / "out")})
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    keep = os.environ.get("OLDPHOTO_NOTEBOOK_OUT")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / path.name)
