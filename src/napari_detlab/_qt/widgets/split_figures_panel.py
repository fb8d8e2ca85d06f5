"""The Review dock's figures by split: which images are validation, training, new or unknown,
the per-class AP table of each, and one split's PR curves and confusion matrix.

The validation images come first and are chosen at the start: figures of images the model
trained on flatter it (:mod:`napari_detlab.core.evaluation.split_figures`).
"""

from __future__ import annotations

from pathlib import Path

from napari.utils.notifications import show_error
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from napari_detlab._qt.widgets.confusion_table import ConfusionTable
from napari_detlab._qt.widgets.pr_plot import PrPlot
from napari_detlab._qt.widgets.row_table import RowTable
from napari_detlab.core.evaluation.review import fraction_text
from napari_detlab.core.evaluation.split_figures import EvaluationFigures
from napari_detlab.core.evaluation.split_groups import RunSplit, SplitSourceError, read_run_split

__all__ = ["SplitFiguresPanel"]


class SplitFiguresPanel(QWidget):
    """Figures of each split; a click on an AP row, or the chooser, shows that split below.

    Attributes
    ----------
    splits_label
        ``"validation (3 images) · training (9 images)"`` and where the split came from.
    ap_table
        One row per split and class: AP, AP50 (pycocotools'), objects.
    split_choice
        The split whose PR curves and confusion matrix are shown.
    pr_plot, confusion
        Those.
    split_override
        A split the user chose instead of the one each prediction's checkpoint records
        (``None``: those).

    Signals
    -------
    split_changed
        The user chose another split source: the figures must be computed again.
    """

    split_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.figures: EvaluationFigures | None = None
        self.split_override: RunSplit | None = None
        self.split_button = QPushButton("Split from…")
        self.split_button.setToolTip(
            "Use the split of another run (a checkpoint, a run folder's split.json) instead "
            "of the one each prediction's checkpoint records"
        )
        self.split_button.clicked.connect(self._ask_split)
        self.own_split_button = QPushButton("Checkpoints' own")
        self.own_split_button.setToolTip("Back to the split each prediction's checkpoint records")
        self.own_split_button.clicked.connect(lambda: self.use_split_from(None))
        self.splits_label = QLabel("–")
        self.splits_label.setWordWrap(True)
        self.ap_table = RowTable(("split", "class", "AP", "AP50", "objects"))
        self.ap_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.ap_table.verticalHeader().hide()
        self.ap_table.row_chosen.connect(lambda row: self.choose(row[0]))
        self.split_choice = QComboBox()
        self.split_choice.currentIndexChanged.connect(self._draw_chosen)
        self.pr_plot = PrPlot()
        self.confusion = ConfusionTable()
        for table in (self.ap_table, self.confusion):
            table.verticalHeader().setDefaultSectionSize(22)
        chooser = QHBoxLayout()
        chooser.addWidget(QLabel("PR curves and confusion of"))
        chooser.addWidget(self.split_choice, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        sources = QHBoxLayout()
        sources.addWidget(self.split_button)
        sources.addWidget(self.own_split_button)
        layout.addWidget(self.splits_label)
        layout.addLayout(sources)
        layout.addWidget(self.ap_table)
        layout.addLayout(chooser)
        layout.addWidget(self.pr_plot)
        layout.addWidget(self.confusion)

    def use_split_from(self, path: str | Path | None) -> bool:
        """Report by the split in ``path`` (``None``: the checkpoints' own); a file without
        one is reported and changes nothing. Returns whether the split changed."""
        try:
            split = None if path is None else read_run_split(path)
        except SplitSourceError as error:
            show_error(str(error))
            return False
        self.split_override = split
        self.split_changed.emit()
        return True

    def _ask_split(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Split of a training run", "", "Checkpoints and splits (*.pt *.json)"
        )
        if path:
            self.use_split_from(path)

    @property
    def chosen(self) -> str | None:
        """The split shown in the plot and the matrix."""
        return self.split_choice.currentData()

    def choose(self, group: str) -> None:
        """Show ``group``'s curves and matrix."""
        index = self.split_choice.findData(group)
        if index >= 0:
            self.split_choice.setCurrentIndex(index)

    def show_figures(self, figures: EvaluationFigures | None) -> None:
        """Replace everything; the split chosen stays chosen while it still has images."""
        previous = self.chosen
        self.figures = figures
        splits = {} if figures is None else figures.splits
        if figures is None:
            self.splits_label.setText("–")
        else:
            source = ", ".join(figures.sources) or "unknown (no checkpoint records one)"
            self.splits_label.setText(f"{figures.summary()}<br>split from: {source}")
        rows, cells = [], []
        for group, split in splits.items():
            for name, ap, ap50, objects in split.ap_rows():
                rows.append((group, name))
                cells.append((group, name, fraction_text(ap), fraction_text(ap50), str(objects)))
        self.ap_table.show_rows(rows, cells)
        _fit_height(self.ap_table, rows_at_most=8)
        self.split_choice.blockSignals(True)
        self.split_choice.clear()
        for group, split in splits.items():
            self.split_choice.addItem(split.title, group)
        self.split_choice.blockSignals(False)
        if previous in splits:
            self.choose(previous)
        self._draw_chosen()

    def _draw_chosen(self, *_args: object) -> None:
        figures, group = self.figures, self.chosen
        split = None if figures is None or group is None else figures.splits.get(group)
        if split is None:
            self.pr_plot.show_curves([], 0.5)
            self.confusion.show_matrix(None)
            _fit_height(self.confusion, rows_at_most=8)
            return
        self.pr_plot.show_curves(list(split.curves.values()), figures.thresholds.score_threshold)
        self.confusion.show_matrix(split.confusion)
        _fit_height(self.confusion, rows_at_most=8)


def _fit_height(table: QTableWidget, rows_at_most: int) -> None:
    """As tall as its rows (up to ``rows_at_most``, then it scrolls): a dock squeezes a
    table without a fixed height down to one row."""
    rows = min(table.rowCount(), rows_at_most)
    header = table.horizontalHeader().sizeHint().height()
    scroll = table.horizontalScrollBar().sizeHint().height()
    table.setFixedHeight(header + rows * table.verticalHeader().defaultSectionSize() + scroll + 4)
