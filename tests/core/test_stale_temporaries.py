"""What a ``kill -9`` mid-write leaves behind is cleaned up, and nothing else is."""

from __future__ import annotations

import os
import time

from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.atomic import remove_stale_temporaries


def _aged(path, seconds: float):
    path.write_bytes(b"half a file")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_only_old_temp_files_of_atomic_writes_are_removed(tmp_path):
    stale = _aged(tmp_path / ".last.pt.k3j_9x2a.tmp", 2 * 3600)  # a checkpoint cut off
    fresh = _aged(tmp_path / ".best.pt.q8w7e6r5.tmp", 10)  # a write going on right now
    mine = _aged(tmp_path / "notes.tmp", 2 * 3600)  # the user's own file
    hidden = _aged(tmp_path / ".hidden.tmp", 2 * 3600)  # not our naming
    real = _aged(tmp_path / "last.pt", 2 * 3600)
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert not stale.exists()
    assert fresh.exists() and mine.exists() and hidden.exists() and real.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_opening_a_dataset_for_annotation_tidies_its_annotations_folder(tmp_path):
    store = AnnotationStore(tmp_path)
    store.annotations_dir.mkdir()
    stale = _aged(store.annotations_dir / ".img1.pt.abcdefgh.tmp", 5000)
    kept = _aged(store.annotations_dir / "img1.pt", 5000)
    assert store.tidy() == [stale]
    assert kept.exists()
