"""The train dock's "Predict" box: a checkpoint, what to predict, Cancel and a progress bar.

What each button predicts, and where the predictions go, is the dock's.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._qt.widgets.path_row import PathRow

__all__ = ["PredictPanel"]


class PredictPanel(QGroupBox):
    """The checkpoint to predict with, the three ways to predict, Cancel, and the progress.

    Parameters
    ----------
    checkpoint_start
        Where the checkpoint dialog opens when its field is empty (the dataset's folder).
    """

    def __init__(
        self, checkpoint_start: Callable[[], str] | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__("Predict", parent)
        self.checkpoint_row = PathRow(
            "best.pt or last.pt of a run",
            title="Checkpoint",
            file_filter="Checkpoints (*.pt)",
            start=checkpoint_start,
        )
        self.image_button = QPushButton("Current image")
        self.dataset_button = QPushButton("Whole dataset")
        self.folder_button = QPushButton("Other folder…")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        form = QFormLayout()
        form.addRow("Checkpoint", self.checkpoint_row)
        buttons = QHBoxLayout()
        for button in (self.image_button, self.dataset_button, self.folder_button):
            buttons.addWidget(button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)

    def set_running(self, running: bool) -> None:
        """One prediction at a time: its Cancel is enabled only while it runs."""
        for button in (self.image_button, self.dataset_button, self.folder_button):
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
