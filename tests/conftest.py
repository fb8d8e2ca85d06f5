"""Shared by every test.

- This folder is on ``sys.path`` (pytest puts a conftest's folder there), so helpers such as
  :mod:`anchor_scene` are imported by name from any test.
- Every test runs with its own empty torch hub cache: presets start from the pretrained
  weights present on the machine, and the weights tests download into torchvision's cache,
  so pointing ``TORCH_HOME`` at an empty folder keeps a developer's own cache (and its
  weights) out of the tests, and the tests out of it. Child processes (the CLI, the training
  process) inherit it.
- napari's settings, ours among them (the Annotator's keys, the last folder...), live in a
  temporary folder for the whole run (``NAPARI_CONFIG``, set before napari is imported and
  inherited by child processes): tests never read or change a developer's own. The folder
  is removed when the run ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_napari_config = Path(tempfile.mkdtemp(prefix="detlab-napari-"))
atexit.register(shutil.rmtree, _napari_config, ignore_errors=True)
os.environ["NAPARI_CONFIG"] = str(_napari_config / "settings.yaml")


@pytest.fixture(autouse=True, scope="session")
def _own_torch_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch-home"))


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's own empty torch cache (``torch.hub.get_dir()`` follows ``TORCH_HOME``): the
    folder where torchvision looks for weights files and a download must land."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"
