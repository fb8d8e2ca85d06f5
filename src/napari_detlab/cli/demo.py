"""``detlab demo``: napari with the sample dataset open in the Annotator, ready to draw.

Example::

    detlab demo                # the built-in sample dataset, in a per-user folder
    detlab demo ~/detlab-demo  # ... written to a folder of your choice
    detlab demo my_images/     # or your own images, opened as they are

The sample dataset is written only if it is not there yet, so boxes added in one demo are
still there in the next. The Anchor viewer, Train / predict and Review docks are docked too
when they are installed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import napari

    from napari_detlab._qt.annotator import AnnotatorWidget

from napari_detlab.cli.verb import add_verb

__all__ = ["OPTIONAL_DOCKS", "build_demo", "register", "run"]

PLUGIN_NAME = "napari-detlab"
# (module, widget display name in napari.yaml): docked when the module exists.
OPTIONAL_DOCKS = (
    ("napari_detlab._qt.anchor_viewer", "Anchor viewer"),
    ("napari_detlab._qt.train_dock", "Train / predict"),
    ("napari_detlab._qt.review", "Review predictions"),
    ("napari_detlab._qt.statistics_dock", "Dataset statistics"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_verb(subparsers, "demo", run, __doc__)
    parser.add_argument(
        "folder",
        type=Path,
        nargs="?",
        default=None,
        metavar="FOLDER",
        help="where the sample dataset goes (default: a per-user cache folder, or "
        "$DETLAB_SAMPLE_DIR); a folder of your own images is opened as it is",
    )
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="build the viewer and return without starting the event loop (for tests)",
    )


def prepare_folder(folder: Path | None) -> Path:
    """The folder to open: the sample dataset written there, or the user's own images."""
    from napari_detlab._sample_data import ensure_sample_dataset

    try:
        return ensure_sample_dataset(folder)
    except FileExistsError:
        # write_sample_dataset refuses a folder holding other images: it is the user's data
        message = f"detlab demo: {folder} holds your own images; opening them as they are"
        print(message, file=sys.stderr)
        return Path(folder)  # type: ignore[arg-type]


def _module_available(module: str) -> bool:
    """Whether a dock's module exists; an error *inside* an existing module is raised."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name == module:
            return False
        raise
    return True


def build_demo(folder: Path) -> tuple[napari.Viewer, AnnotatorWidget]:
    """A viewer with the Annotator (and any other detlab docks) showing ``folder``."""
    import napari
    from qtpy.QtCore import QTimer

    from napari_detlab import keep_triton_out_of_napari

    keep_triton_out_of_napari()  # before the viewer's OpenGL context exists (see there)

    viewer = napari.Viewer(title="napari-detlab demo")
    annotator_dock, annotator = viewer.window.add_plugin_dock_widget(PLUGIN_NAME, "Annotator")
    others = [
        viewer.window.add_plugin_dock_widget(PLUGIN_NAME, name, tabify=True)[1]
        for module, name in OPTIONAL_DOCKS
        if _module_available(module)
    ]
    annotator.open_folder(folder)

    def once_shown() -> None:
        annotator_dock.raise_()  # the Annotator's tab in front: annotating comes first
        for widget in others:  # overlays (anchors, predictions) wait until their tab is chosen
            if hasattr(widget, "set_overlay_visible"):
                widget.set_overlay_visible(False)
        viewer.reset_view()  # fit the image to the canvas, now that it has its real size

    QTimer.singleShot(300, once_shown)
    return viewer, annotator


def run(args: argparse.Namespace) -> int:
    from napari_detlab.cli.main import CliError

    if args.folder is not None and args.folder.exists() and not args.folder.is_dir():
        raise CliError(f"{args.folder}: not a folder")
    folder = prepare_folder(args.folder)
    print(f"detlab demo: annotating {folder}", file=sys.stderr)
    build_demo(folder)
    if not args.no_run:
        import napari

        napari.run()
    return 0
