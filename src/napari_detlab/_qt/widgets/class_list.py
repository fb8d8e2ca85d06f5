"""The Annotator's class list: choose the class to draw, add, rename, remove and recolour classes.

Each button is one call into the :class:`~napari_detlab.core.annotations.annotator.Annotator`
model, which saves the list with the dataset and rewrites files; this control only asks the
user (a name, a colour, whether boxes may be deleted) and shows the list the model announces.
"""

from __future__ import annotations

from collections.abc import Callable

from napari.utils.notifications import show_warning
from qtpy.QtCore import Signal
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QColorDialog,
    QComboBox,
    QGridLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from napari_detlab.core.annotations.annotator import Annotator
from napari_detlab.core.annotations.store import ClassInUseError, ClassSpec
from napari_detlab.core.errors import DetlabError

__all__ = ["ClassListControl"]


class ClassListControl(QWidget):
    """The draw-class chooser and the buttons that change the class list.

    Parameters
    ----------
    annotator
        The model whose classes are shown and changed.

    Signals
    -------
    class_chosen(str)
        The user chose a class to draw (in the list, or by adding it).
    move_requested(str)
        The user asked to move the selected boxes to this class.
    """

    class_chosen = Signal(str)
    move_requested = Signal(str)

    def __init__(self, annotator: Annotator, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.annotator = annotator
        self.combo = QComboBox()
        self.combo.setToolTip("The class new boxes are drawn in")
        self.combo.currentTextChanged.connect(self._on_chosen)
        self.new_class_edit = QLineEdit()
        self.new_class_edit.setPlaceholderText("new class name")
        self.new_class_edit.returnPressed.connect(self.add_typed)
        buttons = {
            "Add class": self.add_typed,
            "Rename…": self.rename_selected,
            "Remove": self.remove_selected,
            "Colour…": self.recolor_selected,
            "Move selected boxes to this class": self._move_clicked,
        }
        add, rename, remove, color, move = (self._button(t, f) for t, f in buttons.items())

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Draw class"), 0, 0)
        grid.addWidget(self.combo, 0, 1, 1, 2)
        grid.addWidget(self.new_class_edit, 1, 0, 1, 2)
        grid.addWidget(add, 1, 2)
        grid.addWidget(rename, 2, 0)
        grid.addWidget(remove, 2, 1)
        grid.addWidget(color, 2, 2)
        grid.addWidget(move, 3, 0, 1, 3)

        annotator.classes_changed.connect(self.show_classes)
        annotator.class_renamed.connect(self._on_renamed)

    def _button(self, text: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        return button

    # -- showing ---------------------------------------------------------------------------
    def selected(self) -> str | None:
        """The class chosen to draw, or ``None`` when the list is empty."""
        return self.combo.currentText() or None

    def show_classes(self, classes: list[ClassSpec], current: str | None = None) -> None:
        """List ``classes``, keeping the chosen class (or choosing ``current``) quietly."""
        current = current or self.combo.currentText()
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems([c.name for c in classes])
        if current in {c.name for c in classes}:
            self.combo.setCurrentText(current)
        self.combo.blockSignals(False)

    def select(self, name: str) -> None:
        """Show ``name`` as the chosen class without reporting it as the user's choice."""
        self.combo.blockSignals(True)
        self.combo.setCurrentText(name)
        self.combo.blockSignals(False)

    def _on_renamed(self, old: str, new: str) -> None:
        index = self.combo.findText(old)
        if index >= 0:
            self.combo.setItemText(index, new)  # the choice follows the renamed class

    def _on_chosen(self, name: str) -> None:
        if name:
            self.class_chosen.emit(name)

    # -- asking ----------------------------------------------------------------------------
    def add_typed(self) -> None:
        """Add the class named in the text field and choose it."""
        try:
            spec = self.annotator.add_class(self.new_class_edit.text())
        except DetlabError as error:
            show_warning(str(error))
            return
        self.new_class_edit.clear()
        self.select(spec.name)
        self.class_chosen.emit(spec.name)

    def rename_selected(self) -> None:
        """Ask for a new name of the chosen class and rename it in every file."""
        old = self.selected()
        if old is None:
            return
        new, ok = QInputDialog.getText(self, "Rename class", f"New name for {old!r}:", text=old)
        if ok and new.strip() and new.strip() != old:
            try:
                self.annotator.rename_class(old, new)
            except DetlabError as error:
                show_warning(str(error))

    def remove_selected(self) -> None:
        """Remove the chosen class; if boxes use it, ask before deleting them everywhere."""
        name = self.selected()
        if name is None:
            return
        try:
            self.annotator.remove_class(name)
        except ClassInUseError as error:
            answer = QMessageBox.question(
                self,
                "Remove class",
                f"{error}.\n\nDelete those boxes from every image?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.annotator.remove_class(name, delete_boxes=True)

    def recolor_selected(self) -> None:
        """Ask for a colour of the chosen class."""
        name = self.selected()
        if name is None:
            return
        current = next(c.color for c in self.annotator.classes if c.name == name)
        color = QColorDialog.getColor(QColor(current), self, f"Colour of {name!r}")
        if color.isValid():
            self.annotator.set_class_color(name, color.name())

    def _move_clicked(self) -> None:
        name = self.selected()
        if name is not None:
            self.move_requested.emit(name)
