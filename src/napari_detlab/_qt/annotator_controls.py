"""The Annotator dock's buttons and labels: made, wired to the dock's methods, laid out.

What each control does is the dock's (:mod:`~napari_detlab._qt.annotator`) and its model's;
this module only says which controls there are, which method each one calls, and where each
sits, top to bottom: open and import / export, the folder, navigation, the pre-labels, the
image, "reviewed", the class list, the edits, the status and the keys in force. The controls
are the dock's own attributes (``dock.next_button``...), as the dock's keys, tooltips and
tests reach them there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from napari_detlab._qt.prelabels import PrelabelPanel
from napari_detlab._qt.widgets.class_list import ClassListControl
from napari_detlab._qt.widgets.interop_menu import build_interop_menu

if TYPE_CHECKING:
    from napari_detlab._qt.annotator import AnnotatorWidget

__all__ = ["build_controls"]


def build_controls(dock: AnnotatorWidget) -> None:
    """Give ``dock`` its buttons and labels, each wired to one of its methods, and lay them out.

    Called once, from the dock's constructor, after its model exists (the checkbox and the
    class list talk to it) and before the keys are bound (they name the buttons in tooltips).
    """
    dock.open_button = QPushButton("Open folder…")
    dock.open_button.clicked.connect(dock._choose_folder)
    dock.folder_label = QLabel("No folder open")
    dock.folder_label.setWordWrap(True)

    dock.previous_button = QPushButton("◀ Previous (b)")
    dock.previous_button.clicked.connect(dock.previous_image)
    dock.position_label = QLabel("0 / 0")
    dock.next_button = QPushButton("Next (n) ▶")
    dock.next_button.clicked.connect(dock.next_image)
    dock.unannotated_button = QPushButton("Next unannotated")
    dock.unannotated_button.clicked.connect(dock.next_unannotated)
    dock.prelabels = PrelabelPanel(dock)  # the model's proposals, what to label next
    dock.image_label = QLabel("")
    dock.image_label.setWordWrap(True)

    dock.reviewed_checkbox = QCheckBox("Reviewed (no boxes = no objects here)")
    dock.reviewed_checkbox.setToolTip(
        "Checked images are used for training; an empty checked image teaches the model "
        "what background looks like. Drawing a box checks it."
    )
    dock.reviewed_checkbox.toggled.connect(dock.annotator.set_reviewed)

    dock.class_list = ClassListControl(dock.annotator)
    dock.class_list.class_chosen.connect(dock._activate_class)
    dock.class_list.move_requested.connect(dock._move_selected)
    dock.undo_button = QPushButton("Undo")
    dock.undo_button.clicked.connect(dock.undo)
    dock.redo_button = QPushButton("Redo")
    dock.redo_button.clicked.connect(dock.annotator.redo)
    dock.copy_button = QPushButton("Copy boxes of the previous image")
    dock.copy_button.clicked.connect(dock.copy_previous)
    dock.status_label = QLabel("")
    dock.keys_label = QLabel("")
    dock.keys_label.setWordWrap(True)
    dock.keys_label.setStyleSheet("font-size: small")

    # Import / export sits beside "Open folder": both decide what the dataset holds.
    dock.interop_button = build_interop_menu(dock, dock.session)
    top_row = QHBoxLayout()
    top_row.addWidget(dock.open_button, 1)
    top_row.addWidget(dock.interop_button)
    navigation = QHBoxLayout()
    for widget in (dock.previous_button, dock.position_label, dock.next_button):
        navigation.addWidget(widget)
    edits = QHBoxLayout()
    for widget in (dock.undo_button, dock.redo_button, dock.copy_button):
        edits.addWidget(widget)

    layout = QVBoxLayout(dock)
    layout.addLayout(top_row)
    layout.addWidget(dock.folder_label)
    layout.addLayout(navigation)
    for widget in (
        dock.unannotated_button,
        dock.prelabels,
        dock.image_label,
        dock.reviewed_checkbox,
        dock.class_list,
    ):
        layout.addWidget(widget)
    layout.addLayout(edits)
    layout.addWidget(dock.status_label)
    layout.addWidget(dock.keys_label)
    layout.addStretch(1)
