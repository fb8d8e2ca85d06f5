"""Dataset statistics: known figures of a hand-made dataset, and the tracker's one-file updates
giving what a full recount gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from index_helpers import count_reads, relabel_in_place

from napari_detlab.core.annotations import file_cache
from napari_detlab.core.annotations.file_cache import index_disabled
from napari_detlab.core.annotations.statistics import (
    ANNOTATED,
    UNTOUCHED,
    ImageFigures,
    StatisticsTracker,
    dataset_statistics,
    summarise,
)
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec
from stats_dataset import annotation, write_known_dataset


@pytest.fixture
def store(tmp_path: Path) -> AnnotationStore:
    return AnnotationStore(write_known_dataset(tmp_path / "data"))


def test_the_known_dataset_has_its_known_figures(store: AnnotationStore) -> None:
    stats = dataset_statistics(store)
    assert (stats.total, stats.annotated, stats.negative, stats.untouched) == (6, 2, 1, 2)
    assert [entry.image.name for entry in stats.unreadable] == ["img6.png"]
    assert "img6.pt" in stats.unreadable[0].reason  # the store's message names the file
    assert [(c.name, c.boxes, c.share) for c in stats.classes] == [
        ("cell", 3, 0.75),
        ("crystal", 1, 0.25),
        ("debris", 0, 0.0),
    ]
    np.testing.assert_array_equal(stats.widths, [10, 40, 100, 20])
    np.testing.assert_array_equal(stats.heights, [10, 40, 100, 30])
    assert stats.size_bins == {"small": 2, "medium": 1, "large": 1}
    # sqrt(area): 10, 40, 100, 24.5 in 20 bins of 5 pixels (the largest box's 100 / 20)
    assert stats.histogram_edges[0] == 0 and stats.histogram_edges[-1] == 100
    assert stats.histogram_counts.sum() == 4
    assert np.flatnonzero(stats.histogram_counts).tolist() == [2, 4, 8, 19]
    assert [(entry.image.name, entry.boxes) for entry in stats.top_images] == [
        ("img1.png", 3),
        ("img2.png", 1),
    ]
    assert stats.summary() == (
        "2 annotated, 1 reviewed negative, 2 untouched of 6 images; "
        "1 image with an unreadable file; 4 boxes"
    )


def test_to_dict_holds_the_same_figures(store: AnnotationStore) -> None:
    figures = dataset_statistics(store, top=1).to_dict()
    assert figures["images"] == {
        "total": 6, "annotated": 2, "model_accepted": 0, "negative": 1, "untouched": 2,
        "unreadable": 1,
    }  # fmt: skip
    assert figures["boxes"] == 4
    assert figures["box_sizes"]["bins"] == {"small": 2, "medium": 1, "large": 1}
    assert figures["box_sizes"]["width"] == {"min": 10.0, "median": 30.0, "max": 100.0}
    assert figures["top_images"] == [{"image": str(store.root / "img1.png"), "boxes": 3}]


def test_an_empty_dataset_has_zero_figures(tmp_path: Path) -> None:
    folder = write_known_dataset(tmp_path / "data")
    for path in (folder / "annotations").glob("*.pt"):
        path.unlink()
    stats = dataset_statistics(AnnotationStore(folder))
    assert (stats.total, stats.untouched, stats.boxes) == (6, 6, 0)
    assert [c.share for c in stats.classes] == [0.0, 0.0, 0.0]
    assert stats.top_images == [] and stats.histogram_counts.sum() == 0


def test_updates_one_file_at_a_time_equal_a_full_recount(store: AnnotationStore) -> None:
    tracker = StatisticsTracker.load(store)
    store.save("img4.png", annotation([[0, 0, 50, 50], [0, 0, 120, 120]], ["debris", "debris"]))
    store.delete("img1.png")
    store.save("img6.png", annotation([], []))  # the unreadable file, fixed as a negative
    for name in ("img4.png", "img1.png", "img6.png"):
        tracker.update(store.root / name)

    stats = tracker.statistics()
    assert stats.to_dict() == dataset_statistics(AnnotationStore(store.root)).to_dict()
    assert (stats.annotated, stats.negative, stats.untouched, len(stats.unreadable)) == (2, 2, 2, 0)
    assert [(c.name, c.boxes) for c in stats.classes] == [
        ("cell", 1),
        ("crystal", 0),
        ("debris", 2),
    ]
    assert [entry.image.name for entry in stats.top_images] == ["img4.png", "img2.png"]


def test_an_update_reads_only_its_own_file(store: AnnotationStore, monkeypatch) -> None:
    tracker = StatisticsTracker.load(store)
    read = count_reads(monkeypatch)
    store.save("img4.png", annotation([[0, 0, 5, 5]], ["cell"]))
    tracker.update(store.root / "img4.png")
    assert tracker.statistics().annotated == 3
    assert read == ["img4.pt"]


def test_a_file_another_program_rewrites_changes_the_next_warm_figures(
    store: AnnotationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The figures kept per file (the warm path: a new store asks, no file is read) are
    never older than the file: a rewrite in place by another program shows at once."""
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)  # trust every stamp at once: warm
    first = dataset_statistics(AnnotationStore(store.root)).to_dict()
    reads = count_reads(monkeypatch)
    assert dataset_statistics(AnnotationStore(store.root)).to_dict() == first
    assert reads == []  # warm: every file's figures (or error) kept

    reads.clear()
    relabel_in_place(store.path_for("img2.png"), "debris")  # same inode, no rename
    after = dataset_statistics(AnnotationStore(store.root)).to_dict()
    assert reads == ["img2.pt"]
    assert [(c["name"], c["boxes"]) for c in after["classes"]] == [
        ("cell", 2),
        ("crystal", 1),
        ("debris", 1),
    ]
    assert first["classes"][2]["boxes"] == 0
    with index_disabled():  # the same figures as reading every file
        assert dataset_statistics(AnnotationStore(store.root)).to_dict() == after


def test_a_warm_tracker_gives_a_full_recount_figures(
    store: AnnotationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    StatisticsTracker.load(AnnotationStore(store.root))  # warms the kept figures
    relabel_in_place(store.path_for("img1.png"), "crystal")
    tracker = StatisticsTracker.load(AnnotationStore(store.root))
    assert [(c.name, c.boxes) for c in tracker.statistics().classes][:2] == [
        ("cell", 1),
        ("crystal", 3),
    ]
    with index_disabled():
        assert tracker.statistics().to_dict() == dataset_statistics(store).to_dict()


def test_changes_reread_only_files_written_behind_its_back(store: AnnotationStore) -> None:
    tracker = StatisticsTracker.load(store)
    store.save("img2.png", annotation([[0, 0, 8, 8]], ["crystal"]))  # an import, say
    changes = tracker.changes()
    assert [image.name for image in changes.figures] == ["img2.png"]
    assert changes.class_names is None  # classes.json unchanged: not read again
    tracker.apply(changes)
    assert tracker.statistics().to_dict() == dataset_statistics(store).to_dict()


def test_a_class_added_to_the_list_shows_after_the_next_changes(store: AnnotationStore) -> None:
    tracker = StatisticsTracker.load(store)
    classes = store.load_classes()
    store.save_classes([*classes, ClassSpec("spore", "#000000")])
    store.save("img4.png", annotation([[0, 0, 5, 5]], ["spore"]))
    tracker.update(store.root / "img4.png")
    assert tracker.classes_stale
    assert [c.name for c in tracker.statistics().classes][-1] == "spore"  # counted at once
    tracker.apply(tracker.changes())
    assert not tracker.classes_stale
    assert tracker.statistics().to_dict() == dataset_statistics(store).to_dict()


def test_an_update_made_while_changes_were_read_is_kept(store: AnnotationStore) -> None:
    tracker = StatisticsTracker.load(store)
    store.save("img4.png", annotation([[0, 0, 5, 5]], ["cell"]))
    changes = tracker.changes()  # read in a worker: it saw one box on img4
    store.save("img4.png", annotation([[0, 0, 5, 5], [9, 9, 20, 20]], ["cell", "cell"]))
    tracker.update(store.root / "img4.png")  # the Annotator saved again meanwhile
    tracker.apply(changes)
    assert tracker.figures(store.root / "img4.png").boxes == 2


def test_next_image_by_state_and_class(store: AnnotationStore) -> None:
    tracker = StatisticsTracker.load(store)
    root = store.root
    assert tracker.next_image(state=UNTOUCHED) == root / "img4.png"
    assert tracker.next_image(root / "img4.png", state=UNTOUCHED) == root / "img5.png"
    assert tracker.next_image(root / "img5.png", state=UNTOUCHED) == root / "img4.png"  # wraps
    assert tracker.next_image(root / "img1.png", label="cell") == root / "img2.png"
    assert tracker.next_image(root / "img2.png", label="crystal") == root / "img1.png"
    assert tracker.next_image(label="debris") is None
    assert tracker.next_image(state=ANNOTATED) == root / "img1.png"


def test_the_size_histogram_has_round_bins_up_to_the_largest_box() -> None:
    sizes = np.array([[110.0, 110.0], [3.0, 3.0], [20.0, 45.0]])  # sqrt(area) 110, 3, 30
    figures = [ImageFigures(Path("a.png"), ANNOTATED, ("x", "x", "y"), sizes)]
    stats = summarise(Path("."), figures, ["y"])
    assert stats.histogram_edges.tolist() == [10.0 * i for i in range(12)]  # 11 bins of 10
    assert stats.histogram_counts.tolist() == [1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    assert [(c.name, c.boxes) for c in stats.classes] == [("y", 1), ("x", 2)]  # listed first
