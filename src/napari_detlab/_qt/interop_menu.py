"""The Annotator's "Import / export" button: the CLI's import and export, from a menu.

Each action asks for a file or folder, writes pending edits first (``annotator.flush()``),
runs :func:`~napari_detlab.formats.import_dataset` or
:func:`~napari_detlab.formats.export_dataset` on the open dataset, and tells the outcome in a
napari notification (problems as a warning, with file and line). After an import the image
on screen is redrawn from disk; when the import added classes the folder is reopened at the
same image so the class list and its layers show them. Images already annotated differently
are only replaced after the user says so.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QMenu, QMessageBox, QToolButton, QWidget

from napari_detlab.core.errors import DetlabError
from napari_detlab.formats.base import Format
from napari_detlab.formats.dataset_io import export_dataset, import_dataset
from napari_detlab.formats.registry import FORMATS

__all__ = ["PathAsker", "build_interop_menu"]

PROBLEMS_SHOWN = 5


class PathAsker(Protocol):
    """Asks the user for a path: ``kind`` is ``"open_file"``, ``"folder"`` or ``"save_file"``."""

    def __call__(self, kind: str, title: str, file_filter: str) -> str | None: ...


def build_interop_menu(
    annotator: Any,
    *,
    ask_path: PathAsker | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> QWidget:
    """A tool button whose menu imports and exports every format for ``annotator``'s dataset.

    Parameters
    ----------
    annotator
        Anything with the AnnotatorWidget API used here: ``store``, ``flush()``,
        ``reload_current()`` and, optionally, ``open_folder(path)``, ``go_to(index)``, ``index``.
    ask_path, confirm
        Replace the file dialogs and the overwrite question (tests pass stubs).
    """
    button = QToolButton()
    button.setText("Import / export")
    button.setToolTip("Import annotations from COCO, VOC, YOLO or tutorial files, or export them")
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    menu = QMenu(button)
    ask = ask_path or _ask_with_dialog(button)
    agree = confirm or _confirm_with_dialog(button)
    for fmt in FORMATS.values():
        action = menu.addAction(f"Import {fmt.title}…")
        action.triggered.connect(partial(_run_import, annotator, fmt, ask, agree))
    menu.addSeparator()
    for fmt in FORMATS.values():
        action = menu.addAction(f"Export {fmt.title}…")
        action.triggered.connect(partial(_run_export, annotator, fmt, ask))
    button.setMenu(menu)
    return button


def _chosen_path(annotator: Any, fmt: Format, ask: PathAsker, verb: str) -> Path | None:
    """The file or folder the user picks for ``verb`` ("Import"/"Export"), pending edits saved.

    ``None`` (after a warning) without an open dataset, or when the user cancels.
    """
    if annotator.store is None:
        show_warning(f"Open an image folder before {verb.lower()}ing annotations")
        return None
    if not fmt.target_is_file:
        kind, file_filter = "folder", ""
    elif verb == "Import":
        kind, file_filter = "open_file", "JSON files (*.json);;All files (*)"
    else:
        kind, file_filter = "save_file", "JSON files (*.json)"
    chosen = ask(kind, f"{verb} {fmt.title}", file_filter)
    if not chosen:
        return None
    annotator.flush()
    return Path(chosen)


def _run_import(
    annotator: Any, fmt: Format, ask: PathAsker, confirm: Callable[[str], bool], *_: object
) -> None:
    source = _chosen_path(annotator, fmt, ask, "Import")
    if source is None:
        return
    root = annotator.store.root
    try:
        report = import_dataset(fmt, source, root)
        if report.kept_existing and confirm(
            f"{len(report.kept_existing)} images already have different boxes "
            f"(e.g. {report.kept_existing[0]}). Replace them with the imported ones?"
        ):
            report = import_dataset(fmt, source, root, overwrite=True)
    except (DetlabError, OSError) as error:
        show_error(f"Import failed: {error}")
        return
    _refresh(annotator, reopen=bool(report.classes_added))
    _notify(report.summary(with_problems=False), report.problems)


def _run_export(annotator: Any, fmt: Format, ask: PathAsker, *_: object) -> None:
    target = _chosen_path(annotator, fmt, ask, "Export")
    if target is None:
        return
    try:
        report = export_dataset(annotator.store.root, fmt, target)
    except (DetlabError, OSError) as error:
        show_error(f"Export failed: {error}")
        return
    _notify(report.summary(with_problems=False), report.problems)


def _refresh(annotator: Any, *, reopen: bool) -> None:
    """Show the imported boxes; reopen the folder when the class list grew."""
    index = getattr(annotator, "index", -1)
    if reopen and hasattr(annotator, "open_folder"):
        annotator.open_folder(annotator.store.root)
        if index >= 0 and hasattr(annotator, "go_to"):
            annotator.go_to(index)
        return
    annotator.reload_current()


def _notify(summary: str, problems: list) -> None:
    show_info(summary)
    if problems:
        shown = "\n".join(str(problem) for problem in problems[:PROBLEMS_SHOWN])
        more = len(problems) - PROBLEMS_SHOWN
        show_warning(shown + (f"\n… and {more} more" if more > 0 else ""))


def _ask_with_dialog(parent: QWidget) -> PathAsker:
    def ask(kind: str, title: str, file_filter: str) -> str | None:
        if kind == "folder":
            return QFileDialog.getExistingDirectory(parent, title) or None
        if kind == "save_file":
            return (
                QFileDialog.getSaveFileName(parent, title, "annotations.json", file_filter)[0]
                or None
            )
        return QFileDialog.getOpenFileName(parent, title, "", file_filter)[0] or None

    return ask


def _confirm_with_dialog(parent: QWidget) -> Callable[[str], bool]:
    def confirm(question: str) -> bool:
        answer = QMessageBox.question(
            parent,
            "Replace annotations?",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    return confirm
