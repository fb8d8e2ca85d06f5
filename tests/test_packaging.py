"""The installed plugin: npe2 finds its manifest, and the tests run on the pinned torch build."""

from __future__ import annotations

import re
from pathlib import Path

import npe2
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]


def test_napari_finds_the_manifest_with_the_five_docks_and_the_sample_data() -> None:
    manifest = npe2.PluginManifest.from_distribution("napari-detlab")  # via its entry point
    manifest.validate_imports()  # every command points at something importable
    widgets = {widget.display_name for widget in manifest.contributions.widgets}
    assert widgets == {
        "Annotator", "Anchor viewer", "Train / predict", "Review predictions", "Dataset statistics",
    }  # fmt: skip
    assert [sample.key for sample in manifest.contributions.sample_data] == ["shapes-and-cells"]
    # the file in the package is the one at the top of the repository
    assert manifest == npe2.PluginManifest.from_file(ROOT / "napari.yaml")


def test_the_environment_is_the_one_the_constraints_file_pins() -> None:
    pins = dict(
        re.findall(r"^(torch|torchvision)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    )
    assert pins == {"torch": "2.14.1", "torchvision": "0.29.1"}
    assert torch.__version__.split("+")[0] == pins["torch"]
    assert torchvision.__version__.split("+")[0] == pins["torchvision"]
    assert "-c ../constraints.txt" in (ROOT / "requirements" / "dev.txt").read_text()


def test_the_manifest_is_a_real_file_inside_the_package() -> None:
    """A symlink in the package would reach a Windows checkout as a text file naming a path."""
    import napari_detlab

    packaged = Path(napari_detlab.__file__).parent / "napari.yaml"
    assert packaged.is_file() and not packaged.is_symlink()


def test_python_and_qt_requirements_follow_napari() -> None:
    from importlib.metadata import metadata

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    napari_python = metadata("napari")["Requires-Python"]  # ">=3.11" for napari 0.9
    assert project["requires-python"] == napari_python
    assert project["optional-dependencies"]["qt"] == ["napari[qt]>=0.9"]
    assert any(r.startswith("napari>=0.9") for r in project["dependencies"])
    assert {"Source", "Bug Tracker"} <= set(project["urls"])


def test_the_napari_under_test_is_the_one_claimed() -> None:
    """``scripts/test_oldest_napari.sh`` runs these tests on the oldest napari we claim
    (``DETLAB_EXPECT_NAPARI``); make sure it really is that napari and not the newest."""
    import os

    import napari

    expected = os.environ.get("DETLAB_EXPECT_NAPARI")
    oldest = (ROOT / "requirements" / "oldest-napari.txt").read_text()
    assert re.search(r"^napari==0\.9\.\d+$", oldest, re.M)  # the floor pyproject states
    if expected:
        assert napari.__version__ == expected
