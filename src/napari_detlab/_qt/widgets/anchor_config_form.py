"""The AnchorViewer's form: backbone, FPN, anchor sizes and ratios, resize, and the level shown.

It edits one :class:`~napari_detlab.core.anchors.tuning.AnchorFields` and says when it
changed; what the text means (and whether it makes a working model) is the core's business.
"""

from __future__ import annotations

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from napari_detlab.core.anchors.tuning import AnchorFields
from napari_detlab.core.model.config import BACKBONES

__all__ = ["AnchorConfigForm"]


class AnchorConfigForm(QWidget):
    """The anchor settings of a config, and which level's anchors the overlay shows.

    Signals
    -------
    changed
        A setting of the config was edited (not emitted by :meth:`show_fields`).
    level_changed
        Another level was chosen.
    """

    changed = Signal()
    level_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.backbone_combo = QComboBox()
        self.backbone_combo.addItems(BACKBONES)
        self.fpn_check = QCheckBox("FPN")
        form.addRow("Backbone", _row(self.backbone_combo, self.fpn_check))
        self.sizes_edit = QLineEdit()
        self.sizes_edit.setToolTip("Anchor sizes per feature map: '16; 32; 64' or '16, 24; 32, 48'")
        form.addRow("Sizes", self.sizes_edit)
        self.ratios_edit = QLineEdit()
        self.ratios_edit.setToolTip("Aspect ratios h/w, one group for every level or one per level")
        form.addRow("Ratios", self.ratios_edit)
        self.min_spin, self.max_spin = QSpinBox(), QSpinBox()
        for spin in (self.min_spin, self.max_spin):
            spin.setRange(32, 4096)
            spin.setSingleStep(32)
        form.addRow("Min size", _row(self.min_spin, QLabel("max"), self.max_spin))
        self.level_spin = QSpinBox()
        self.level_spin.setRange(0, 4)
        self.follow_check = QCheckBox("follow mouse")
        form.addRow("Level", _row(self.level_spin, self.follow_check))

        for signal in (
            self.backbone_combo.currentTextChanged,
            self.fpn_check.toggled,
            self.sizes_edit.textChanged,
            self.ratios_edit.textChanged,
            self.min_spin.valueChanged,
            self.max_spin.valueChanged,
        ):
            signal.connect(self.changed)
        self.level_spin.valueChanged.connect(self.level_changed)

    @property
    def _setting_widgets(self) -> tuple[QWidget, ...]:
        return (self.backbone_combo, self.fpn_check, self.sizes_edit, self.ratios_edit,
                self.min_spin, self.max_spin)  # fmt: skip

    def fields(self) -> AnchorFields:
        """The settings as typed (perhaps not a valid config: the core says)."""
        return AnchorFields(
            backbone=self.backbone_combo.currentText(),
            fpn=self.fpn_check.isChecked(),
            sizes=self.sizes_edit.text(),
            ratios=self.ratios_edit.text(),
            min_size=self.min_spin.value(),
            max_size=self.max_spin.value(),
        )

    def show_fields(self, fields: AnchorFields) -> None:
        """Show ``fields`` without emitting :attr:`changed` once per widget."""
        widgets = self._setting_widgets
        for widget in widgets:
            widget.blockSignals(True)
        try:
            self.backbone_combo.setCurrentText(fields.backbone)
            self.fpn_check.setChecked(fields.fpn)
            self.sizes_edit.setText(fields.sizes)
            self.ratios_edit.setText(fields.ratios)
            self.min_spin.setValue(fields.min_size)
            self.max_spin.setValue(fields.max_size)
        finally:
            for widget in widgets:
                widget.blockSignals(False)

    def set_level_count(self, levels: int) -> None:
        """Offer levels ``0 .. levels - 1`` (the backbone's feature maps)."""
        self.level_spin.setMaximum(levels - 1)

    @property
    def level(self) -> int:
        """The level whose anchors the overlay shows."""
        return self.level_spin.value()

    @property
    def following(self) -> bool:
        """Whether the anchors shown follow the mouse rather than the last click."""
        return self.follow_check.isChecked()


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for widget in widgets:
        row.addWidget(widget)
    return row
