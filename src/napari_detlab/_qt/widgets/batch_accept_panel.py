"""The Review dock's "Accept all above threshold…" and "Undo batch" buttons.

The rules are :mod:`~napari_detlab.core.evaluation.batch_accept`'s; this panel asks which
images (every image with predictions, those not annotated yet, or those matching a name
pattern), counts in a worker what accepting at the Review's thresholds would add, asks
"N boxes on M images?" and writes them in a worker. Then it tells the other docks through
the session (the Annotator reloads the image on screen, the statistics re-read the changed
files).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._qt.jobs import start_worker
from napari_detlab.core.annotations.store import AnnotationStore
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.evaluation.batch_accept import (
    AcceptedBatch,
    AcceptPlan,
    Progress,
    UndoneBatch,
    apply_accept,
    has_batch,
    images_to_accept,
    plan_accept,
    undo_accept,
)
from napari_detlab.core.evaluation.review import ReviewThresholds
from napari_detlab.core.relay import relay

if TYPE_CHECKING:
    from napari.qt.threading import WorkerBase

    from napari_detlab._qt.session import DetlabSession

__all__ = ["SCOPES", "BatchAcceptPanel"]

# The choices of images, as the scope box lists them.
SCOPES = ("every image with predictions", "images not annotated yet", "images named…")
_UNANNOTATED, _NAMED = 1, 2
# Progress is shown every this many images (and at the end): a label update per image of
# 10,000 would cost the GUI thread more than the work.
_PROGRESS_EVERY = 50


class BatchAcceptPanel(QWidget):
    """Accept the kept predictions of many images at once, and undo that batch.

    Parameters
    ----------
    session
        The viewer's session: the dataset, pending edits, the docks to tell.
    thresholds
        The Review's current settings.
    predictions_dir
        The folder of the predictions under review (``None`` when there is none).
    confirm
        Asks the user a question; replaced by a stub in tests.

    Attributes
    ----------
    worker
        The count or write running, if any.
    """

    def __init__(
        self,
        session: DetlabSession,
        thresholds: Callable[[], ReviewThresholds],
        predictions_dir: Callable[[], Path | None],
        *,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self._thresholds = thresholds
        self._predictions_dir = predictions_dir
        self._confirm = confirm or self._ask
        self.worker: WorkerBase | None = None
        self.scope = QComboBox()
        self.scope.addItems(SCOPES)
        self.patterns = QLineEdit()
        self.patterns.setPlaceholderText("names or patterns: img_01*.png, b.png")
        self.patterns.setVisible(False)
        self.scope.currentIndexChanged.connect(
            lambda index: self.patterns.setVisible(index == _NAMED)
        )
        self.accept_button = QPushButton("Accept all above threshold…")
        self.accept_button.setToolTip(
            "Accept the predictions kept at these thresholds on many images at once; they are "
            "marked 'accepted from model, not yet reviewed' until you review each image"
        )
        self.accept_button.clicked.connect(self.start)
        self.undo_button = QPushButton("Undo batch")
        self.undo_button.setToolTip(
            "Put every file of the last batch back as it was; images changed since are kept"
        )
        self.undo_button.clicked.connect(self.undo)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(QLabel("On"))
        row.addWidget(self.scope, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.accept_button)
        buttons.addWidget(self.undo_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.patterns)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    # -- accepting -------------------------------------------------------------------------
    def start(self, *_: object) -> None:
        """Count what accepting would add (in a worker), then ask and write."""
        store, folder = self.session.store, self._predictions_dir()
        if store is None or folder is None or not folder.is_dir():
            show_info("No predictions to accept: predict in the Train / predict dock")
            return
        if self.worker is not None:
            return
        self.session.request_flush()  # the count must see the person's latest edits
        patterns = self.patterns.text().replace(",", " ").split()
        if self.scope.currentIndex() == _NAMED and not patterns:
            show_info("Type the names of the images (or patterns such as img_0*.png)")
            return
        work = partial(
            _plan, store, folder, self._thresholds(),
            unannotated_only=self.scope.currentIndex() == _UNANNOTATED,
            patterns=patterns if self.scope.currentIndex() == _NAMED else [],
        )  # fmt: skip
        self._run("Counting the predictions to accept…", work, partial(self._planned, store))

    def _planned(self, store: AnnotationStore, plan: AcceptPlan) -> None:
        for line in plan.left_out[:5]:
            show_warning(f"Left out: {line}")
        if not plan.images:
            self.status.setText("No prediction at these thresholds adds a box")
            show_info("No prediction at these thresholds adds a box to these images")
            return
        thresholds = plan.thresholds
        question = (
            f"Accept {plan.summary()}? (score ≥ {thresholds.score_threshold:.2f}, NMS IoU "
            f"{thresholds.nms_iou:.2f}; boxes already there are not added twice.) Each image "
            "is marked 'accepted from model, not yet reviewed' until you review it; "
            "'Undo batch' takes the whole batch back."
        )
        if not self._confirm(question):
            self.status.setText("Nothing accepted")
            return
        self.session.request_flush()
        self._run("Accepting predictions…", partial(apply_accept, store, plan), self._accepted)

    def _accepted(self, batch: AcceptedBatch) -> None:
        self.status.setText(batch.summary())
        show_info(batch.summary())
        self._tell_docks(batch.written)

    # -- undo --------------------------------------------------------------------------------
    def undo(self, *_: object) -> None:
        """Put the last batch's files back (those changed since are kept and named)."""
        store = self.session.store
        if store is None or not has_batch(store):
            show_info("No batch of accepted predictions to undo")
            return
        if self.worker is not None:
            return
        self.session.request_flush()  # an edit of a batch image now counts as a change
        self._run("Undoing the batch…", partial(undo_accept, store), self._undone)

    def _undone(self, undone: UndoneBatch) -> None:
        self.status.setText(undone.summary())
        (show_warning if undone.kept else show_info)(undone.summary())
        self._tell_docks(undone.restored)

    # -- running -----------------------------------------------------------------------------
    def _run(self, text: str, work: Callable[..., object], done: Callable) -> None:
        """Run ``work(on_progress=...)`` in a worker, its progress on the status line."""
        self.status.setText(text)
        self.accept_button.setEnabled(False)
        self.undo_button.setEnabled(False)

        def run(post: Callable[[tuple[int, int]], None]) -> object:
            def report(step: int, total: int) -> None:
                if step % _PROGRESS_EVERY == 0 or step == total:
                    post((step, total))

            return work(on_progress=report)

        def steps() -> Generator[tuple[int, int] | None, None, object]:
            return (yield from relay(run, name="detlab-accept"))

        def progress(step: tuple[int, int] | None) -> None:
            if step is not None:
                self.status.setText(f"{text} {step[0]} / {step[1]}")

        def finish(result: object) -> None:
            self._idle()
            done(result)

        self.worker = start_worker(
            steps, description=text.rstrip("…"), activity=True,
            on_yield=progress, on_done=finish, on_error=self._failed,
        )  # fmt: skip

    def _failed(self, error: Exception) -> None:
        self._idle()
        self.status.setText(str(error))
        show_error(str(error) if isinstance(error, (DetlabError, OSError)) else repr(error))

    def _idle(self) -> None:
        self.worker = None
        self.accept_button.setEnabled(True)
        self.undo_button.setEnabled(True)

    def _tell_docks(self, images: list[Path]) -> None:
        """The image on screen first (the Annotator reloads it); any one image makes the
        statistics and the Review re-read the files whose stamps moved."""
        if not images:
            return
        shown = self.session.image_path
        self.session.annotations_changed.emit(shown if shown is not None else images[0])

    def _ask(self, question: str) -> bool:
        box = QMessageBox(self)
        box.setWindowTitle("Accept predictions")
        box.setText(question)
        accept = box.addButton("Accept", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is accept


def _plan(
    store: AnnotationStore,
    folder: Path,
    thresholds: ReviewThresholds,
    *,
    unannotated_only: bool,
    patterns: list[str],
    on_progress: Progress,
) -> AcceptPlan:
    """Choose the images and count (in the worker: both read the folder)."""
    images = images_to_accept(store, unannotated_only=unannotated_only, patterns=patterns)
    return plan_accept(store, folder, thresholds, images, on_progress=on_progress)
