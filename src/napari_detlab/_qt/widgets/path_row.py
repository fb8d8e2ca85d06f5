"""A path field with its "…" button, which opens a file dialog to fill it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget

__all__ = ["PathRow"]


class PathRow(QWidget):
    """A path typed or chosen in a dialog: a folder, or a file when ``file_filter`` is given.

    Parameters
    ----------
    placeholder
        Shown while the field is empty (where the default comes from).
    title
        The dialog's title.
    file_filter
        A Qt name filter such as ``"Checkpoints (*.pt)"``; ``None`` chooses a folder.
    start
        Where the dialog opens when the field is empty (called when the button is pressed).
    """

    def __init__(
        self,
        placeholder: str,
        *,
        title: str,
        file_filter: str | None = None,
        start: Callable[[], str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._title, self._file_filter, self._start = title, file_filter, start
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        button = QPushButton("…")
        button.setMaximumWidth(30)
        button.clicked.connect(self.browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(button)

    def path(self) -> Path | None:
        """The path in the field (``~`` expanded), or ``None`` when it is empty."""
        text = self.edit.text().strip()
        return Path(text).expanduser() if text else None

    def browse(self) -> None:
        """Let the person choose in a dialog; the field keeps its text if they cancel."""
        start = self.edit.text() or (self._start() if self._start is not None else "")
        if self._file_filter is None:
            chosen = QFileDialog.getExistingDirectory(self, self._title, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self._title, start, self._file_filter)
        if chosen:
            self.edit.setText(chosen)
