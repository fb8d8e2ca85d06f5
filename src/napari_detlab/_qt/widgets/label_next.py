"""The Annotator's "Next most informative" row: the button, and why it chose the image.

It sits under "Next unannotated": both jump to an image nobody annotated, this one to the
image the model is least sure of (:mod:`~napari_detlab.core.assist.ranking`), and the line
under it says why in what a person can check on screen ("2 boxes with scores in 0.3-0.7").
The dock decides what is ranked; this widget only asks and shows.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

__all__ = ["LabelNextControl"]


class LabelNextControl(QWidget):
    """Two buttons and the reason of the last choice.

    Signals
    -------
    next_requested
        The person asked for the most informative unannotated image.
    predict_all_requested
        The person asked to predict every unannotated image, so the order covers them all
        (otherwise only the images predicted ahead of ``n`` are ranked).
    """

    next_requested = Signal()
    predict_all_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.next_button = QPushButton("Next most informative")
        self.next_button.setToolTip(
            "The unannotated image the model is least sure of (undecided scores, classes "
            "that disagree): labelling it teaches the model most"
        )
        self.next_button.clicked.connect(self.next_requested.emit)
        self.predict_all_button = QPushButton("Rank all")
        self.predict_all_button.setToolTip(
            "Predict every unannotated image in the background, so the order covers them all"
        )
        self.predict_all_button.clicked.connect(self.predict_all_requested.emit)
        self.reason_label = QLabel("")
        self.reason_label.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.next_button, 1)
        row.addWidget(self.predict_all_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.reason_label)

    def show_reason(self, text: str) -> None:
        """Say why the image on screen was chosen (or why none could be)."""
        self.reason_label.setText(text)
