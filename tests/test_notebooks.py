"""Execute every notebook in ``notebooks/`` top to bottom, as a researcher would.

The notebooks call only the public API, so when an API change breaks them this test says so.
Each runs in a fresh IPython kernel of *this* interpreter (the project's virtual environment):
a kernelspec for ``sys.executable`` is written to a temporary folder with ipykernel's own
``write_kernel_spec`` and handed to nbclient through a kernel manager, so no kernel is
registered anywhere global and a fresh clone's ``.venv`` works as it is. The kernel's working
directory, its connection file and its IPython profile are temporary folders, so nothing a
notebook might write lands in the repository or the home folder; the executed notebooks are
not written back.

The stored notebooks must carry no outputs (``execution_count`` null): outputs are regenerated
here, never committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "natexp-test-python"
#: Generous per-cell limit: the machine may be busy; a whole notebook takes seconds.
CELL_TIMEOUT = 600


def test_notebooks_exist():
    assert [p.name for p in PATHS] == [
        "01_exploring_cohorts.ipynb",
        "02_uptake_and_sensitivity.ipynb",
    ]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: a code cell was stored with outputs"
            assert cell.execution_count is None, f"{path.name}: execution_count is not null"
    text = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "synthetic" in text.lower(), f"{path.name} must say its data are synthetic"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec manager that knows one kernel: this interpreter, in a temporary folder."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / KERNEL, overrides={"display_name": "natexp tests"})
    return KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)


@pytest.fixture(scope="module")
def kernel_home(tmp_path_factory) -> Path:
    """Connection files and the kernel's IPython profile (history) go here."""
    return tmp_path_factory.mktemp("kernel-home")


def execute(path: Path, kernel_specs: KernelSpecManager, cwd: Path,
            home: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs,
                       connection_file=str(home / f"{path.stem}-connection.json"))
    client = NotebookClient(
        nb, km=km, kernel_name=KERNEL, timeout=CELL_TIMEOUT, allow_errors=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    # raises CellExecutionError, naming the cell, on the first error
    client.execute(env={**os.environ, "IPYTHONDIR": str(home / "ipython")})
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def html_outputs(nb: nbformat.NotebookNode) -> list[str]:
    return [o["data"]["text/html"] for o in outputs(nb) if "text/html" in o.get("data", {})]


def png_count(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs(nb))


@pytest.mark.slow
def test_01_exploring_cohorts(kernel_specs, kernel_home, tmp_path):
    nb = execute(NOTEBOOKS / "01_exploring_cohorts.ipynb", kernel_specs, tmp_path, kernel_home)
    html = html_outputs(nb)
    # the cohort displays its design and flow table
    assert any("natexp cohort" in h and "oxon_vs_rest" in h for h in html)
    # the notebook asks polars for whole flow tables: every step shows
    assert any("Identified (eligible for the comparison)" in h for h in html)
    # the flow diagram is drawn inline
    assert png_count(nb) >= 1
    # the run composed with Hydra prints its summary, saying the data are synthetic
    text = "".join(o.get("text", "") for o in outputs(nb) if o.get("output_type") == "stream")
    assert "Data: SYNTHETIC DATA" in text
    assert "Primary outcome" in text
    assert list(tmp_path.iterdir()) == [], "the notebook wrote files"


@pytest.mark.slow
def test_02_uptake_and_sensitivity(kernel_specs, kernel_home, tmp_path):
    nb = execute(NOTEBOOKS / "02_uptake_and_sensitivity.ipynb", kernel_specs, tmp_path,
                 kernel_home)
    html = "".join(html_outputs(nb))
    assert "natexp-twobytwo" in html  # the 2x2 panel's own HTML
    assert "natexp-result" in html  # Result and the sensitivity containers' HTML
    assert "Non-response tipping point" in html
    assert "Leave one area out" in html
    # tipping point, randomization, leave-one-out, placebo, uptake and forest figures
    assert png_count(nb) >= 6
    assert list(tmp_path.iterdir()) == [], "the notebook wrote files"
