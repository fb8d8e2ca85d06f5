"""The train dock's "Train" box: what to train with, Start / Cancel, and how the run goes.

The form holds the person's choices (dataset, model, where its weights start, epochs, batch
size, learning rate, validation share, device) and draws a
:class:`~napari_detlab.core.training.progress.RunProgress`: progress bar with ETA, status
line, loss and validation-mAP curves. Starting, cancelling and assembling the config and
options are the dock's; the "Start from" row (with its download) is a
:class:`~napari_detlab._qt.widgets.start_choice.StartChoice`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._qt.widgets.curve_plot import CurvePlot
from napari_detlab._qt.widgets.path_row import PathRow
from napari_detlab._qt.widgets.start_choice import StartChoice
from napari_detlab.core.model.config import PRESETS, default_preset_name
from napari_detlab.core.training.options import TrainOptions
from napari_detlab.core.training.progress import CurvePoint, RunProgress

if TYPE_CHECKING:
    from napari_detlab.core.model.config import ModelConfig

__all__ = ["ANCHOR_VIEWER_CHOICE", "TrainForm"]

# The model choice that trains the config the AnchorViewer's "Use these anchors" sent.
ANCHOR_VIEWER_CHOICE = "AnchorViewer's config"


class TrainForm(QGroupBox):
    """The training inputs, the Start and Cancel buttons, and the run's progress and curves.

    Parameters
    ----------
    config_for
        The config the next run would train from a given start (see
        :class:`~napari_detlab._qt.widgets.start_choice.StartChoice`); the dock's.

    Signals
    -------
    choices_changed
        The person changed a value worth remembering for the next napari start
        (:meth:`choices`).
    """

    choices_changed = Signal()

    def __init__(
        self, config_for: Callable[[str], ModelConfig], parent: QWidget | None = None
    ) -> None:
        import torch

        super().__init__("Train", parent)
        cuda = torch.cuda.is_available()
        defaults = TrainOptions()
        self.dataset_row = PathRow("the Annotator's folder", title="Dataset folder")
        self.config_combo = QComboBox()
        self.config_combo.addItems(list(PRESETS))
        self.config_combo.setCurrentText(default_preset_name())
        self.start_choice = StartChoice(config_for)
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setDecimals(2)
        self.val_spin.setRange(0.0, 0.9)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setValue(defaults.val_fraction)
        self.val_spin.setToolTip(
            "Share of the annotated images held out to score the model. Each image's side "
            "follows from its name, so it keeps its side as the folder grows"
        )
        self.stratify_check = QCheckBox("stratified by class")
        self.stratify_check.setChecked(defaults.stratify_split)
        self.stratify_check.setToolTip(
            "Stratify by class: every class with two images or more has images in "
            "validation, and every class has images in training"
        )
        self.epochs_spin = _spin(1, 10000, 20)
        self.batch_spin = _spin(1, 256, 4 if cuda else 2)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1.0)
        self.lr_spin.setSingleStep(0.001)
        self.lr_spin.setValue(0.01)
        self.device_combo = QComboBox()
        self.device_combo.addItems(["auto", "cpu"] + (["cuda"] if cuda else []))
        self.device_label = QLabel(
            f"CUDA GPU: {torch.cuda.get_device_name(0)}"
            if cuda
            else "No CUDA GPU found: training runs on the CPU"
        )
        self.device_label.setWordWrap(True)

        self.start_button = QPushButton("Start training")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.status_label = QLabel("Not started")
        self.status_label.setWordWrap(True)
        self.loss_plot = CurvePlot("loss", "#ff851b")
        self.map_plot = CurvePlot("validation mAP", "#2ecc40")

        form = QFormLayout()
        form.addRow("Dataset", self.dataset_row)
        form.addRow("Model", self.config_combo)
        form.addRow("Start from", self.start_choice)
        form.addRow(self.start_choice.line)  # the whole width: a wrapped line keeps its height
        validation = QHBoxLayout()
        validation.addWidget(self.val_spin)
        validation.addWidget(self.stratify_check)
        form.addRow("Validation", validation)
        form.addRow("Epochs", self.epochs_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Learning rate", self.lr_spin)
        form.addRow("Device", self.device_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.device_label)
        layout.addLayout(buttons)
        for widget in (self.progress, self.status_label, self.loss_plot, self.map_plot):
            layout.addWidget(widget)
        self.config_combo.currentTextChanged.connect(self.start_choice.refresh)
        for signal in (
            self.config_combo.currentTextChanged,
            self.epochs_spin.valueChanged,
            self.batch_spin.valueChanged,
            self.lr_spin.valueChanged,
            self.val_spin.valueChanged,
            self.stratify_check.toggled,
            self.device_combo.currentTextChanged,
        ):
            signal.connect(self.choices_changed)

    def choices(self) -> dict[str, bool | int | float | str]:
        """What to remember for the next start, by setting name (see the plugin manifest).

        The AnchorViewer's config is not remembered: it belongs to this session's dataset.
        """
        model = self.config_combo.currentText()
        return {
            "model": model if model in PRESETS else "",
            **self.option_values(),
        }

    def restore(self, remembered: Mapping[str, object]) -> None:
        """Show what was remembered (missing or empty values keep this machine's defaults)."""
        if remembered.get("model") in PRESETS:
            self.config_combo.setCurrentText(str(remembered["model"]))
        if remembered.get("batch_size"):
            self.batch_spin.setValue(int(remembered["batch_size"]))
        for spin, name in ((self.epochs_spin, "epochs"), (self.lr_spin, "lr")):
            if name in remembered:
                spin.setValue(remembered[name])
        if "val_fraction" in remembered:
            self.val_spin.setValue(float(remembered["val_fraction"]))
        self.stratify_check.setChecked(bool(remembered.get("stratify_split", False)))
        if self.device_combo.findText(str(remembered.get("device", ""))) >= 0:
            self.device_combo.setCurrentText(str(remembered["device"]))

    def option_values(self) -> dict[str, object]:
        """The training options chosen here, by ``TrainOptions`` field name."""
        return {
            "epochs": self.epochs_spin.value(),
            "batch_size": self.batch_spin.value(),
            "lr": self.lr_spin.value(),
            "val_fraction": self.val_spin.value(),
            "stratify_split": self.stratify_check.isChecked(),
            "device": self.device_combo.currentText(),
        }

    def offer_anchor_viewer_config(self) -> None:
        """Add the AnchorViewer's config to the model choices, and choose it."""
        if self.config_combo.findText(ANCHOR_VIEWER_CHOICE) < 0:
            self.config_combo.addItem(ANCHOR_VIEWER_CHOICE)
        if self.config_combo.currentText() == ANCHOR_VIEWER_CHOICE:
            self.start_choice.refresh()  # a new config from the AnchorViewer, same choice
        self.config_combo.setCurrentText(ANCHOR_VIEWER_CHOICE)

    def set_running(self, running: bool) -> None:
        """One run at a time: Start while none runs, Cancel while one does."""
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def start(self, run: RunProgress) -> None:
        """A new run: empty curves, a bar at zero."""
        self.loss_plot.clear()
        self.map_plot.clear()
        self.progress.setFormat("%p%")
        self.show_run(run)
        self.set_running(True)

    def show_run(self, run: RunProgress, point: CurvePoint | None = None) -> None:
        """Draw where ``run`` is, and the curve point it just added."""
        self.progress.setMaximum(run.total_iterations)
        self.progress.setValue(run.iteration)
        if run.eta is not None:
            self.progress.setFormat(f"%p% — ETA {run.eta}")
        self.status_label.setText(run.status)
        if point is not None:
            plot = self.loss_plot if point.curve == "loss" else self.map_plot
            plot.append(point.x, point.y)


def _spin(low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    return spin
