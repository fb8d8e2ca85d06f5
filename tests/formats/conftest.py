"""Fixtures of the format tests (helpers live in ``formats_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from formats_helpers import write_images


@pytest.fixture(scope="module")
def image_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test images, written once per module and copied into each dataset."""
    folder = tmp_path_factory.mktemp("images")
    write_images(folder)
    return folder
