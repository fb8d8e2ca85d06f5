"""Dataset statistics dock: where the work on the open dataset stands, live as you annotate.

It shows the figures of :class:`~napari_detlab.core.annotations.statistics.DatasetStatistics`
(the same as ``detlab stats``):

* the counts line: images annotated, accepted from the model and not yet reviewed (when
  any), reviewed negative, untouched (and unreadable) out of the total; each count is a
  link to the next image in that state;
* a table of classes (boxes, share of all boxes); a click goes to the next image with a box
  of that class;
* a histogram of the boxes' ``sqrt(area)`` with COCO's small / medium / large counts;
* the images with the most boxes; a click shows that image.

Jumps go through the session (:meth:`~napari_detlab._qt.session.DetlabSession.request_image`),
which the Annotator answers. The dataset is read once in a worker
(:class:`~napari_detlab.core.annotations.statistics.StatisticsTracker`); after that each of the
Annotator's saves re-reads that one file, and files other docks write (accepted predictions,
an import) are found by their stamps in a worker. Behind another dock's tab the figures are
kept current but not redrawn until the tab is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_info
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from napari_detlab._qt.jobs import LatestJobs
from napari_detlab._qt.lifecycle import follow_dock_visibility
from napari_detlab._qt.session import session_for
from napari_detlab._qt.widgets.row_table import RowTable
from napari_detlab._qt.widgets.size_histogram import SizeHistogram
from napari_detlab.core.anchors.figures import format_percent
from napari_detlab.core.annotations.statistics import (
    ANNOTATED,
    MODEL_ACCEPTED,
    NEGATIVE,
    UNREADABLE,
    UNTOUCHED,
    ClassCount,
    DatasetStatistics,
    ImageCount,
    StatisticsChanges,
    StatisticsTracker,
)
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.wording import counted

if TYPE_CHECKING:
    import napari

__all__ = ["StatisticsWidget"]

LINK_COLOR = "#8ab4f8"  # Qt's default link blue is unreadable on napari's dark theme
CLASS_TABLE_HEIGHT = 160  # a few classes: the rest of the height goes to the image table

# The counts line's links: state -> the words after the count.
_STATE_WORDS = {
    ANNOTATED: "annotated",
    MODEL_ACCEPTED: "accepted from model, not yet reviewed",
    NEGATIVE: "reviewed negative",
    UNTOUCHED: "untouched",
    UNREADABLE: "unreadable",
}


class StatisticsWidget(QWidget):
    """The open dataset's figures, each entry a way to its images.

    Parameters
    ----------
    napari_viewer
        The viewer whose session (dataset, saves, the image on screen) the dock follows.

    Attributes
    ----------
    tracker
        The dataset's figures per image (None before a dataset is open and while the first
        read runs).
    statistics
        The figures shown last.
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.session = session_for(napari_viewer)
        self.store: AnnotationStore | None = None
        self.tracker: StatisticsTracker | None = None
        self.statistics: DatasetStatistics | None = None
        self._saved_while_loading: set[Path] = set()
        self._jobs = LatestJobs(on_error=self._job_failed)
        self._dock: QDockWidget | None = None
        self._shown = True  # False while the dock's tab is hidden
        self._stale = False  # figures changed while hidden
        QTimer.singleShot(0, self._follow_dock)  # napari docks the widget after __init__
        self._build_ui()
        self.session.attach(
            self,
            teardown=self._jobs.outdate_all,
            dataset_changed=self._on_dataset_changed,
            annotation_saved=self._on_annotation_saved,
            annotations_changed=self._on_annotations_changed,
        )

    # -- UI -----------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.counts_label = QLabel("Open a dataset in the Annotator to see its figures")
        self.counts_label.setWordWrap(True)
        self.counts_label.setTextFormat(Qt.TextFormat.RichText)
        self.counts_label.linkActivated.connect(lambda state: self.go_to_next(state=state))
        self.counts_label.setToolTip("Click a count to go to the next image in that state")
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.class_table = RowTable(("class", "boxes", "share"))
        self.class_table.setToolTip("Click a class to go to the next image with such a box")
        self.class_table.row_chosen.connect(lambda entry: self.go_to_next(label=entry.name))
        self.sizes_label = QLabel("")
        self.sizes_label.setWordWrap(True)
        self.size_histogram = SizeHistogram()
        self.class_table.setMaximumHeight(CLASS_TABLE_HEIGHT)
        self.image_table = RowTable(("image", "boxes"))
        for table in (self.class_table, self.image_table):
            table.horizontalHeader().setStretchLastSection(True)
        self.image_table.row_chosen.connect(lambda entry: self.show_image(entry.image))
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Re-read annotation files written outside napari")
        refresh.clicked.connect(self.refresh)
        row = QHBoxLayout()
        row.addWidget(self.counts_label, 1)
        row.addWidget(refresh)

        layout = QVBoxLayout(self)
        layout.addLayout(row)
        for widget in (self.message_label, QLabel("Boxes per class (click: next image)"),
                       self.class_table, self.sizes_label, self.size_histogram,
                       QLabel("Images with the most boxes (click to show)"),
                       self.image_table):  # fmt: skip
            layout.addWidget(widget)

    def _follow_dock(self) -> None:
        if self._dock is None:
            self._dock = follow_dock_visibility(self, self.set_overlay_visible)

    def set_overlay_visible(self, visible: bool) -> None:
        """Draw only while the dock's tab is shown; showing it catches up on changes."""
        self._shown = visible
        if visible and self._stale:
            self.redraw()

    # -- reading the dataset ------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a read of the dataset is running (tests wait on it)."""
        return self._jobs.running

    def _on_dataset_changed(self, store: AnnotationStore | None) -> None:
        self.store, self.tracker, self.statistics = store, None, None
        self._saved_while_loading.clear()
        self._jobs.outdate_all()  # a re-read of the previous dataset must not land on this one
        if store is None:
            return
        self.counts_label.setText(f"Reading the annotations of {store.root.name}…")
        self._jobs.start("load", StatisticsTracker.load, store, on_done=self._loaded)

    def _loaded(self, tracker: StatisticsTracker) -> None:
        if tracker.store is not self.store:
            return
        self.tracker = tracker
        saved, self._saved_while_loading = self._saved_while_loading, set()
        for image in saved:  # the read may have seen these files before their last save
            tracker.update(image)
        self.redraw()

    def _on_annotation_saved(self, path: object) -> None:
        """The Annotator wrote (or deleted) one image's file: re-read that file alone."""
        if path is None:
            self.refresh()
        elif self.tracker is None:
            if self.store is not None:
                self._saved_while_loading.add(Path(path))
        else:
            self.tracker.update(Path(path))
            # A class was added, renamed or removed: the list is read with the next re-read
            # (one at a time: it reads every file, and saves come every few seconds).
            if self.tracker.classes_stale and not self._jobs.running:
                self.refresh()
            self.redraw()

    def _on_annotations_changed(self, path: object) -> None:
        """Another dock wrote annotation files (one image or, for an import, many): the
        files are found by their stamps."""
        if self.tracker is None and self.store is not None and path is not None:
            self._saved_while_loading.add(Path(path))
        self.refresh()

    def refresh(self) -> None:
        """Re-read, in a worker, the files whose stamps changed since they were read."""
        if self.tracker is None:
            return
        self._jobs.start("sync", self.tracker.changes, on_done=self._apply)

    def _apply(self, changes: StatisticsChanges) -> None:
        if self.tracker is not None:
            self.tracker.apply(changes)
            self.redraw()

    def _job_failed(self, _kind: str, error: Exception) -> None:
        self.message_label.setText(str(error))

    # -- drawing ------------------------------------------------------------------------
    def redraw(self) -> None:
        """Show the tracker's figures (put off while the tab is hidden)."""
        if self.tracker is None:
            return
        if not self._shown:
            self._stale = True
            return
        self._stale = False
        self.statistics = stats = self.tracker.statistics()
        self.counts_label.setText(_counts_html(stats))
        self.class_table.show_rows(stats.classes, [_class_cells(c) for c in stats.classes])
        self.sizes_label.setText(_sizes_text(stats))
        self.size_histogram.set_histogram(stats.histogram_edges, stats.histogram_counts)
        self.image_table.show_rows(stats.top_images, [_image_cells(e) for e in stats.top_images])
        unreadable = [entry.image.name for entry in stats.unreadable]
        self.message_label.setText(
            f"Unreadable annotation file: {', '.join(unreadable)}" if unreadable else ""
        )
        self.message_label.setToolTip("\n".join(entry.reason for entry in stats.unreadable))

    # -- going to images ----------------------------------------------------------------
    def go_to_next(self, *, state: str | None = None, label: str | None = None) -> Path | None:
        """Show the next image after the one on screen in ``state`` / with a ``label`` box."""
        if self.tracker is None:
            return None
        image = self.tracker.next_image(self.session.image_path, state=state, label=label)
        if image is None:
            words = f"is {_STATE_WORDS[state]}" if state else f"has a {label!r} box"
            show_info(f"No image {words}")
            return None
        self.show_image(image)
        return image

    def show_image(self, image: Path) -> None:
        """Ask the Annotator to show ``image``."""
        if not self.session.request_image(Path(image)):
            show_info("Open the Annotator to go to the images")


def _counts_html(stats: DatasetStatistics) -> str:
    """The counts line, each count a link to the next image in its state."""
    counts = {
        ANNOTATED: stats.annotated,
        MODEL_ACCEPTED: stats.model_accepted,
        NEGATIVE: stats.negative,
        UNTOUCHED: stats.untouched,
        UNREADABLE: len(stats.unreadable),
    }
    parts = [
        f'<a href="{state}" style="color: {LINK_COLOR}">{count} {_STATE_WORDS[state]}</a>'
        for state, count in counts.items()
        if count or state not in (UNREADABLE, MODEL_ACCEPTED)
    ]
    boxes = counted(stats.boxes, "box", "boxes")
    return f"{', '.join(parts)} of {counted(stats.total, 'image')}; {boxes}"


def _class_cells(entry: ClassCount) -> tuple[str, str, str]:
    return entry.name, str(entry.boxes), format_percent(entry.share)


def _image_cells(entry: ImageCount) -> tuple[str, str]:
    return entry.image.name, str(entry.boxes)


def _sizes_text(stats: DatasetStatistics) -> str:
    bins = ", ".join(f"{name} {count}" for name, count in stats.size_bins.items())
    return f"Box sizes, sqrt(area) in pixels (COCO: {bins})"
