"""A write that fails names the file the caller asked for, keeps its errno and leaves nothing.

Every file the project writes goes through :func:`~napari_detlab.core.atomic.atomic_writer`,
so this is where a full disk or a read-only folder becomes the one line a user reads.
"""

from __future__ import annotations

import errno

import pytest

from failing_writes import disk_full, fail_writes, read_only, temp_files
from napari_detlab.core.atomic import WriteError, atomic_writer
from napari_detlab.core.errors import DetlabError


@pytest.mark.parametrize("size", [10, 1 << 20], ids=["buffered", "larger-than-the-buffer"])
def test_a_full_disk_names_the_destination_and_keeps_the_old_file(tmp_path, monkeypatch, size):
    target = tmp_path / "annotation.pt"
    target.write_bytes(b"the old file")
    fail_writes(monkeypatch, disk_full)
    with pytest.raises(WriteError) as failed, atomic_writer(target) as handle:
        handle.write(b"x" * size)  # fails here, or at the flush after the block

    error = failed.value
    assert isinstance(error, OSError) and isinstance(error, DetlabError)
    assert (error.errno, error.filename) == (errno.ENOSPC, str(target))  # not the temp file
    assert str(error) == (
        f"{target}: cannot write (No space left on device); the disk is full; free some space "
        "or choose another folder"
    )
    assert target.read_bytes() == b"the old file"
    assert not temp_files(tmp_path)


def test_a_read_only_folder_is_named_through_the_file(tmp_path, monkeypatch):
    fail_writes(monkeypatch, read_only)
    with pytest.raises(WriteError) as failed, atomic_writer(tmp_path / "split.json"):
        pass
    assert failed.value.errno == errno.EROFS
    assert failed.value.filename == str(tmp_path / "split.json")
    assert not list(tmp_path.iterdir())


def test_an_error_of_the_callers_own_block_keeps_its_type(tmp_path):
    """A download's dropped connection is an ``OSError`` too, but not a failed write."""
    dropped = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    with pytest.raises(ConnectionResetError) as raised, atomic_writer(tmp_path / "w.pt") as handle:
        handle.write(b"half a download")
        raise dropped
    assert raised.value is dropped
    assert not list(tmp_path.iterdir())
