"""The few places napari-detlab touches napari's private attributes, each for measured speed.

napari gives plugin widgets a proxy of the viewer that warns on private access
(``FutureWarning``: "unavailable no earlier than 0.10.0"). Every use goes through here and
has a public fallback: when napari refuses or drops the attribute, the caller takes the
slower public path, and nothing breaks. The warning is silenced because the person at the
viewer cannot act on it; ``tests/qt/test_train_review.py`` opens the docks through
napari's proxy, so CI notices the day a fast path stops being taken.

The uses, and what each saves under software OpenGL:

- ``Window._qt_viewer`` (the canvas's layer-to-visual map), for
  :mod:`~napari_detlab._qt.shader_reuse`: about 25 ms of each ``n`` at 4 MP;
- ``Viewer._on_layers_change``, blocked during a Review redraw: two dimension updates per
  slider step;
- ``Vectors._max_vectors_thumbnail``: the Review outline thumbnail, half of a slider step
  with 4,000 segments.
"""

from __future__ import annotations

import warnings

__all__ = ["private_attribute", "set_private_attribute"]


def private_attribute(owner: object, name: str) -> object | None:
    """``owner.name``, or None when napari does not have it or refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(owner, name, None)


def set_private_attribute(owner: object, name: str, value: object) -> bool:
    """Set ``owner.name`` if napari has it and allows it; whether it was set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if not hasattr(owner, name):
            return False
        try:
            setattr(owner, name, value)
        except AttributeError:
            return False
        return True
