"""The installed plugin: npe2 finds its manifest, and the tests run on the pinned torch build."""

from __future__ import annotations

import re
from pathlib import Path

import npe2
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[1]


def test_napari_finds_the_manifest_with_the_four_docks_and_the_sample_data() -> None:
    manifest = npe2.PluginManifest.from_distribution("napari-detlab")  # via its entry point
    manifest.validate_imports()  # every command points at something importable
    widgets = {widget.display_name for widget in manifest.contributions.widgets}
    assert widgets == {"Annotator", "Anchor viewer", "Train / predict", "Review predictions"}
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
