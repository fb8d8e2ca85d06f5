"""The four Review settings as controls: score and NMS sliders, class-agnostic box, match IoU.

They read as one :class:`~napari_detlab.core.evaluation.review.ReviewThresholds`. The sliders
track the hand (``changed`` fires on every step of a drag, and the dock redraws at once), while
``released`` marks the end of a drag: the moment for work too slow to run mid-drag.
"""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QWidget
from superqt import QLabeledDoubleSlider

from napari_detlab.core.evaluation.review import ReviewThresholds

__all__ = ["ThresholdControls"]


class ThresholdControls(QWidget):
    """Edit a :class:`ReviewThresholds`.

    Parameters
    ----------
    initial
        The settings shown first.

    Signals
    -------
    changed
        Any setting changed (while a slider is dragged too).
    released
        A slider was let go.
    """

    changed = Signal()
    released = Signal()

    def __init__(
        self, initial: ReviewThresholds | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        initial = initial or ReviewThresholds()
        self.score_slider = self._slider(0.0, 1.0, initial.score_threshold)
        self.nms_slider = self._slider(0.05, 1.0, initial.nms_iou)
        self.nms_slider.setToolTip("Boxes overlapping a better one by more than this go; 1 = off")
        self.class_agnostic_check = QCheckBox("Class-agnostic NMS (boxes of any class compete)")
        self.class_agnostic_check.setChecked(initial.class_agnostic)
        self.class_agnostic_check.toggled.connect(self.changed)
        self.match_iou_spin = QDoubleSpinBox()
        self.match_iou_spin.setRange(0.05, 0.95)
        self.match_iou_spin.setSingleStep(0.05)
        self.match_iou_spin.setValue(initial.match_iou)
        self.match_iou_spin.setToolTip("A prediction is a true positive above this IoU")
        self.match_iou_spin.valueChanged.connect(self.changed)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Score ≥", self.score_slider)
        form.addRow("NMS IoU", self.nms_slider)
        form.addRow("", self.class_agnostic_check)
        form.addRow("Match IoU", self.match_iou_spin)

    def _slider(self, low: float, high: float, value: float) -> QLabeledDoubleSlider:
        slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setSingleStep(0.01)
        slider.setDecimals(2)
        slider.setValue(value)
        # Tracking on: valueChanged fires while dragging, so the view follows the hand.
        slider.setTracking(True)
        slider.valueChanged.connect(self.changed)
        slider.sliderReleased.connect(self.released)
        return slider

    @property
    def thresholds(self) -> ReviewThresholds:
        """The settings shown."""
        return ReviewThresholds(
            score_threshold=float(self.score_slider.value()),
            nms_iou=float(self.nms_slider.value()),
            class_agnostic=self.class_agnostic_check.isChecked(),
            match_iou=float(self.match_iou_spin.value()),
        )

    @property
    def dragging(self) -> bool:
        """Whether a slider is held: slow work waits for ``released``."""
        return self.score_slider.isSliderDown() or self.nms_slider.isSliderDown()
