"""The Annotator's "Import / export" button: the CLI's import and export, from a menu.

Each action asks for a file or folder, asks the session to write pending edits first, and
runs :func:`~napari_detlab.formats.background.import_steps` or
:func:`~napari_detlab.formats.background.export_steps` on the session's dataset in napari's
thread pool: on two thousand images a format takes seconds, during which the viewer keeps
drawing and the activity dock shows the progress, stage by stage. The menu's actions are
disabled until the job ends; the outcome is a napari notification (problems as a warning,
with file and line).

Images already annotated differently are only replaced after the user says so: the import
first writes what replaces nothing, then asks, then runs again with ``overwrite``. Afterwards
the docks hear of it through the session: the image on screen is announced as changed (the
Annotator redraws it from disk), or, when the import added classes, the dataset is reopened
at the same image so the class list and its layers show them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QFileDialog, QMenu, QMessageBox, QToolButton, QWidget

from napari_detlab._qt.jobs import start_worker
from napari_detlab._qt.session import DetlabSession
from napari_detlab.core.wording import counted
from napari_detlab.formats.background import Failed, Step, export_steps, import_steps
from napari_detlab.formats.base import Format
from napari_detlab.formats.registry import FORMATS
from napari_detlab.formats.reports import ExportReport, ImportReport

if TYPE_CHECKING:
    from napari.qt.threading import WorkerBase

__all__ = ["InteropMenuButton", "PathAsker", "build_interop_menu"]

PROBLEMS_SHOWN = 5


class PathAsker(Protocol):
    """Asks the user for a path: ``kind`` is ``"open_file"``, ``"folder"`` or ``"save_file"``."""

    def __call__(self, kind: str, title: str, file_filter: str) -> str | None: ...


def build_interop_menu(
    parent: QWidget,
    session: DetlabSession,
    *,
    ask_path: PathAsker | None = None,
    confirm: Callable[[str], bool] | None = None,
) -> QToolButton:
    """A tool button whose menu imports and exports every format for ``session``'s dataset.

    Parameters
    ----------
    parent
        The dock that shows the button; the dialogs open over it.
    session
        Its viewer's session: the dataset, the image on screen, and the docks to tell.
    ask_path, confirm
        Replace the file dialogs and the overwrite question (tests pass stubs).
    """
    return InteropMenuButton(parent, session, ask_path=ask_path, confirm=confirm)


class InteropMenuButton(QToolButton):
    """The button of :func:`build_interop_menu`; ``worker`` is the job running, if any."""

    def __init__(
        self,
        parent: QWidget,
        session: DetlabSession,
        *,
        ask_path: PathAsker | None = None,
        confirm: Callable[[str], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.worker: WorkerBase | None = None
        self._ask = ask_path or _ask_with_dialog(self)
        self._confirm = confirm or _confirm_with_dialog(self)
        self._job = ""
        self._stage = ""
        self.setText("Import / export")
        self.setToolTip("Import annotations from COCO, VOC, YOLO or tutorial files, or export them")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        for fmt in FORMATS.values():
            menu.addAction(f"Import {fmt.title}…").triggered.connect(
                partial(self.start_import, fmt)
            )
        menu.addSeparator()
        for fmt in FORMATS.values():
            menu.addAction(f"Export {fmt.title}…").triggered.connect(
                partial(self.start_export, fmt)
            )
        self.setMenu(menu)
        # The dock closed while a job runs: stop it at its next step, so that nothing calls
        # back into a deleted button.
        self.destroyed.connect(lambda *_: self.worker is not None and self.worker.quit())

    # -- import --------------------------------------------------------------------------
    def start_import(self, fmt: Format, *_: object) -> None:
        """Ask for the source and import it in the background."""
        source = self._chosen_path(fmt, "Import")
        if source is not None:
            self._import(fmt, source, overwrite=False, classes_added=[])

    def _import(
        self, fmt: Format, source: Path, *, overwrite: bool, classes_added: list[str]
    ) -> None:
        done = partial(self._imported, fmt, source, overwrite, classes_added)
        self._run(
            f"Import {fmt.title}", import_steps, (fmt, source, self.session.store, overwrite), done
        )

    def _imported(
        self,
        fmt: Format,
        source: Path,
        overwrite: bool,
        classes_added: list[str],
        outcome: ImportReport | Failed,
    ) -> None:
        if isinstance(outcome, Failed):
            self._set_busy(False)
            show_error(f"Import failed: {outcome}")
            return
        classes_added = [*classes_added, *outcome.classes_added]
        if (
            not overwrite
            and outcome.kept_existing
            and self._confirm(
                f"{counted(len(outcome.kept_existing), 'image')} already "
                f"{'has' if len(outcome.kept_existing) == 1 else 'have'} different boxes "
                f"(e.g. {outcome.kept_existing[0]}). Replace them with the imported ones?"
            )
        ):
            self._import(fmt, source, overwrite=True, classes_added=classes_added)
            return
        self._set_busy(False)
        self._show_imported(outcome.dataset, reopen=bool(classes_added))
        _notify(outcome)

    def _show_imported(self, root: Path, *, reopen: bool) -> None:
        """Tell the docks: the image on screen changed on disk, or the class list grew."""
        if self.session.dataset != root:  # another folder was opened while it ran
            return
        image = self.session.image_path
        if reopen:
            self.session.request_open_folder(root)
            if image is not None:
                self.session.request_image(image)
        elif image is not None:
            self.session.annotations_changed.emit(image)

    # -- export --------------------------------------------------------------------------
    def start_export(self, fmt: Format, *_: object) -> None:
        """Ask for the target and export the dataset there in the background."""
        target = self._chosen_path(fmt, "Export")
        if target is not None:
            self._run(
                f"Export {fmt.title}",
                export_steps,
                (self.session.store, fmt, target),
                self._exported,
            )

    def _exported(self, outcome: ExportReport | Failed) -> None:
        self._set_busy(False)
        if isinstance(outcome, Failed):
            show_error(f"Export failed: {outcome}")
        else:
            _notify(outcome)

    # -- the job ---------------------------------------------------------------------------
    def _chosen_path(self, fmt: Format, verb: str) -> Path | None:
        """The file or folder the user picks for ``verb`` ("Import"/"Export"); ``None``
        (after a warning) without an open dataset, or when the user cancels."""
        if self.session.store is None:
            show_warning(f"Open an image folder before {verb.lower()}ing annotations")
            return None
        if not fmt.target_is_file:
            kind, file_filter = "folder", ""
        elif verb == "Import":
            kind, file_filter = "open_file", "JSON files (*.json);;All files (*)"
        else:
            kind, file_filter = "save_file", "JSON files (*.json)"
        chosen = self._ask(kind, f"{verb} {fmt.title}", file_filter)
        return Path(chosen) if chosen else None

    def _run(
        self,
        job: str,
        steps: Callable[..., Generator[Step, None, object]],
        args: tuple[object, ...],
        on_done: Callable[[object], None],
    ) -> None:
        """Start ``steps(*args)`` in napari's thread pool, the menu disabled until it ends.

        Pending edits are written first, as the job reads and writes the annotation files.
        """
        self.session.request_flush()
        self._set_busy(True)
        self._job, self._stage = job, ""
        self.worker = start_worker(
            steps,
            *args,
            description=job,
            activity=True,  # a few seconds, and the user waits for it: show it in napari
            on_yield=self._show_progress,
            on_done=on_done,
            on_error=lambda _: self._set_busy(False),  # napari reports the error itself
        )

    def _show_progress(self, step: Step) -> None:
        """Move the activity dock's bar: one range per stage (reading, then writing)."""
        if self.worker is None:
            return
        done, total, stage = step
        bar = self.worker.pbar  # napari's progress object, drawn by the activity dock
        if (stage, total) != (self._stage, bar.total):
            self._stage = stage
            bar.set_description(f"{self._job}: {stage}")
            bar.reset(total=total)
        bar.update(done - bar.n)

    def _set_busy(self, busy: bool) -> None:
        if not busy:
            self.worker = None
        for action in self.menu().actions():
            action.setEnabled(not busy)


def _notify(report: ImportReport | ExportReport) -> None:
    show_info(report.summary(with_problems=False))
    problems = report.problems
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
