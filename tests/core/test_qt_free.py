"""The core (and the formats over it) import and run without Qt or napari.

Every module under ``napari_detlab.core`` and ``napari_detlab.formats`` is imported in a fresh
interpreter in which importing Qt, napari or any of napari's GUI stack raises: a module that
needs them, even lazily at the top of a function called on import, fails here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy", "magicgui",
           "superqt", "app_model")  # fmt: skip

SCRIPT = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    BLOCKED = {blocked!r}

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: the core must not need it")
            return None

    sys.meta_path.insert(0, Refuse())
    import napari_detlab.core, napari_detlab.formats

    names = []
    for package in (napari_detlab.core, napari_detlab.formats):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
            names.append(info.name)
    from napari_detlab.core import AnnotationStore, train  # the lazy face resolves too
    assert not any(name.split(".")[0] in BLOCKED for name in sys.modules), "a GUI module loaded"
    print(len(names))
    """
)


def test_every_core_module_imports_with_qt_and_napari_blocked():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(blocked=BLOCKED)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) >= 30  # the walk found the wings' modules


def test_the_blocker_does_refuse_qt():
    """The check above can fail: the same interpreter refuses a Qt import."""
    script = SCRIPT.format(blocked=BLOCKED).replace(
        "import napari_detlab.core, napari_detlab.formats", "import qtpy"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0 and "qtpy is blocked" in done.stderr
