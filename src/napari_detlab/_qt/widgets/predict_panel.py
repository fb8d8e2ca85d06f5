"""The train dock's "Predict" box: a checkpoint, tiles or not, what to predict, Cancel and a
progress bar.

What each button predicts, and where the predictions go, is the dock's. The "Tiles" choice
is :class:`~napari_detlab.core.model.tiling.Tiling`'s mode: "auto" (the default) tiles only
images that resizing would shrink too far for their objects; "on" and "off" are for the
person who knows better (small objects in a middling image; a large image of large objects).
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._qt.widgets.path_row import PathRow
from napari_detlab.core.model.tiling import TILING_MODES, Tiling

__all__ = ["PredictPanel"]


class PredictPanel(QGroupBox):
    """The checkpoint to predict with, tiles or not, the three ways to predict, Cancel, and
    the progress.

    Parameters
    ----------
    checkpoint_start
        Where the checkpoint dialog opens when its field is empty (the dataset's folder).

    Signals
    -------
    tiling_changed
        The person chose another tiling mode (``str``), worth remembering for the next start.
    """

    tiling_changed = Signal(str)

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
        self.tiling_combo = QComboBox()
        self.tiling_combo.addItems(list(TILING_MODES))
        self.tiling_combo.setCurrentText(Tiling().mode)
        self.tiling_combo.setToolTip(
            "Predict in overlapping tiles at full resolution. auto: only images that resizing "
            "to the model's input would shrink more than 4 times on a side (small objects "
            "would vanish); on: every image; off: none (the whole image, resized)"
        )
        self.tiling_combo.currentTextChanged.connect(self.tiling_changed)
        self.image_button = QPushButton("Current image")
        self.dataset_button = QPushButton("Whole dataset")
        self.folder_button = QPushButton("Other folder…")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        form = QFormLayout()
        form.addRow("Checkpoint", self.checkpoint_row)
        form.addRow("Tiles", self.tiling_combo)
        buttons = QHBoxLayout()
        for button in (self.image_button, self.dataset_button, self.folder_button):
            buttons.addWidget(button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)

    def tiling(self) -> Tiling:
        """How the next prediction cuts images into tiles (the mode chosen, sizes default)."""
        return Tiling(self.tiling_combo.currentText())

    def restore_tiling(self, mode: object) -> None:
        """Show a remembered mode; anything else keeps the default."""
        if mode in TILING_MODES:
            self.tiling_combo.setCurrentText(str(mode))

    def set_running(self, running: bool) -> None:
        """One prediction at a time: its Cancel is enabled only while it runs."""
        for button in (self.image_button, self.dataset_button, self.folder_button):
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(1, total))
        self.progress.setValue(done)
