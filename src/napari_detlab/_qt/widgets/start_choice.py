"""The train form's "Start from" row: where the next run's weights start, and getting them.

A detector trained on a few dozen photos needs pretrained weights, and napari-detlab never
downloads behind the user's back. So the row shows the choices the model's backbone allows
(the best present, from scratch, an ImageNet backbone, a COCO detector), each saying whether
its file is on this machine, one line saying what the next run starts from, and a
"Download..." button for the file the choice lacks.

The download is :func:`~napari_detlab.core.model.download.download_weights` in napari's
thread pool (:func:`~napari_detlab._qt.jobs.start_worker`, its progress relayed by
:func:`~napari_detlab.core.relay.relay`): napari's activity dock shows it in MB, Cancel (or
the viewer closing) stops it at the next chunk, and a wrong or cut-off file is never kept.
The outcome is one notification naming the file or the reason; then the choices and the
line are read again. Offline, the line and the failure name the file to copy by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QSignalBlocker
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from napari_detlab._qt.jobs import show_progress, start_worker
from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.download import (
    DownloadCancelledError,
    download_weights,
    progress_in_mb,
    progress_text,
)
from napari_detlab.core.model.weights_catalog import (
    BEST_START,
    KnownWeights,
    describe_start,
    start_choice_title,
    start_choices,
    weights_to_fetch,
)
from napari_detlab.core.relay import relay

if TYPE_CHECKING:
    from napari.qt.threading import WorkerBase

    from napari_detlab.core.model.config import ModelConfig

__all__ = ["StartChoice"]

logger = logging.getLogger(__name__)
Progress = tuple[int, int]  # bytes done, bytes in all (0: unknown)


class StartChoice(QWidget):
    """The starting-point choice, the line saying what the next run starts from, and the
    download of the weights the choice lacks.

    Parameters
    ----------
    config_for
        The config the next run would train if it started from a given choice
        (:func:`~napari_detlab.core.model.weights_catalog.with_start`'s ``start``): the
        dock's model choice with the start applied. It raises ``DetlabError`` when there is
        no valid model to describe.

    Attributes
    ----------
    combo
        The choices; each item's data is its start (``"best"``, ``"none"``, ``"imagenet"``,
        ``"coco"``).
    line
        "Next run's starting point: ...", in the words of
        :func:`~napari_detlab.core.model.weights_catalog.describe_start`; the form places
        it (across the form's whole width, where a wrapped line keeps its height).
    download_button, cancel_button
        Download the file the choice lacks; stop that download (nothing is kept).
    worker
        The running download's napari worker (``None`` when none runs).
    """

    def __init__(
        self, config_for: Callable[[str], ModelConfig], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._config_for = config_for
        self._fetch: KnownWeights | None = None  # what Download would bring now
        self.worker: WorkerBase | None = None
        self._cancel: threading.Event | None = None
        self.combo = QComboBox()
        self.combo.setToolTip("Where the weights of the next training run start")
        self.download_button = QPushButton("Download...")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.line = QLabel()
        self.line.setWordWrap(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.download_button)
        row.addWidget(self.cancel_button)
        self.combo.currentIndexChanged.connect(self._show_line)
        self.download_button.clicked.connect(self.download)
        self.cancel_button.clicked.connect(self.cancel_download)

    def start(self) -> str:
        """The chosen start (the best present until the choices are first read)."""
        return self.combo.currentData() or BEST_START

    # -- showing -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read again which choices the model allows, which files are here, and the line.

        Called when the model choice changes and when a download lands; the choice is kept
        where the new model allows it, else it falls back to the best present.
        """
        chosen = self.start()
        config = self._config(BEST_START)
        if config is None:
            return
        with QSignalBlocker(self.combo):
            self.combo.clear()
            for start in start_choices(config):
                self.combo.addItem(start_choice_title(config, start), start)
            self.combo.setCurrentIndex(max(0, self.combo.findData(chosen)))
        self._show_line()

    def _show_line(self) -> None:
        start = self.start()
        config = self._config(start)
        if config is not None:
            line = f"Next run's starting point: {describe_start(config)}"
            self._show(line, weights_to_fetch(config, start))

    def _config(self, start: str) -> ModelConfig | None:
        """The config the next run would train from ``start``; ``None`` (and the reason on
        the line) when the dock has no valid model."""
        try:
            return self._config_for(start)
        except (DetlabError, OSError) as error:
            self._show(f"No model to train yet: {error}", None)
            return None

    def _show(self, line: str, fetch: KnownWeights | None) -> None:
        self.line.setText(line)
        self._fetch = fetch
        self.download_button.setEnabled(fetch is not None and not self.is_downloading())
        self.download_button.setToolTip(
            f"Download {fetch.name} ({fetch.size_mb:.0f} MB) from {fetch.url} into "
            f"{fetch.path.parent}; its SHA-256 is checked before it is kept"
            if fetch is not None
            else "Nothing to download for this choice"
        )

    # -- downloading ---------------------------------------------------------------------
    def is_downloading(self) -> bool:
        return self.worker is not None

    def download(self) -> bool:
        """Download the file the chosen start lacks, in the background; ``False`` if there is
        none or a download is already running."""
        weights = self._fetch
        if weights is None or self.is_downloading():
            return False
        cancel = self._cancel = threading.Event()
        fetch = partial(download_weights, weights, cancel=cancel)

        def steps() -> Generator[Progress | None, None, Path]:
            def run(post: Callable[[Progress], None]) -> Path:
                return fetch(on_progress=lambda done, total: post((done, total)))

            return (yield from relay(run, on_close=cancel.set, name="detlab-download"))

        def progressed(step: Progress) -> None:
            done, total = step
            done_mb, total_mb = progress_in_mb(done, total)
            if self.worker is not None:
                show_progress(self.worker, done_mb, total_mb, progress_text(weights, *step))

        def landed(path: Path) -> None:
            self._download_ended()
            show_info(f"Downloaded {weights.name} to {path}")

        def failed(error: Exception) -> None:
            self._download_ended()
            if isinstance(error, DownloadCancelledError):
                show_info(f"Download of {weights.name} cancelled; nothing was kept")
                return
            show_error(f"Download of {weights.name} failed: {error}")
            if not isinstance(error, DetlabError):
                logger.error("the download stopped", exc_info=error)

        self.download_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.worker = start_worker(
            steps, description=f"Downloading {weights.name}", activity=True,
            on_yield=progressed, on_done=landed, on_error=failed,
        )  # fmt: skip
        return True

    def cancel_download(self) -> None:
        """Stop the download at its next chunk; the partial file is removed."""
        if self._cancel is not None:
            self._cancel.set()

    def _download_ended(self) -> None:
        self.worker = None
        self.cancel_button.setEnabled(False)
        self.refresh()
