"""The Annotator's keys in napari: bound from the settings, rebound when they change, given back.

napari looks a key up in the active layer's keymap before the viewer's, and layer types bind
keys of their own (Shapes binds ``b``), so an action meant to work whatever layer is chosen
is bound on the viewer *and* on every layer instance, layers added later included. Undo and
redo are bound on the viewer only, so a Labels layer keeps its own paint undo; the arrow keys
only on the class layers, where they act on the selected boxes and elsewhere keep napari's
meaning. What each key does and the checks on a person's choice are in
:mod:`napari_detlab.core.annotations.keymap`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from napari_detlab._layers import CLASS_LAYER_PREFIX
from napari_detlab._qt.plugin_settings import values, watch
from napari_detlab.core.annotations.keymap import ANNOTATOR_KEYS, KeymapError, bindings, key_help

if TYPE_CHECKING:
    import napari
    from qtpy.QtWidgets import QWidget

__all__ = ["KEYS_CATEGORY", "AnnotatorKeys", "is_class_layer"]

KEYS_CATEGORY = "annotator_keys"  # the settings' category in the plugin manifest
KeyFunction = Callable[[object], None]


class AnnotatorKeys:
    """The keys one Annotator dock bound, and how to bind them again or give them back.

    Holds no reference to the dock (only ``run``, which should hold it weakly), so the keys
    can be given back after the dock's widget is gone.

    Parameters
    ----------
    viewer
        The viewer whose keymaps (its own and its layers') get the keys.
    run
        Runs an action by name (``"next_image"``, ``"class_3"``, ``"move_left_fine"``...).
    on_error
        Told when a person's keys cannot be used (two actions on one key): the defaults are
        bound instead.
    on_bound
        Called after each binding, so the dock can show the keys in force.
    """

    def __init__(
        self,
        viewer: napari.Viewer,
        run: Callable[[str], None],
        on_error: Callable[[str], None],
        on_bound: Callable[[], None],
    ) -> None:
        self._viewer = weakref.ref(viewer)
        self._run = run
        self._on_error = on_error
        self._on_bound = on_bound
        self._bound: dict[str, tuple[KeyFunction, str]] = {}  # key -> (function, scope)
        self.chosen: dict[str, str] = {}
        self._stop_watching = watch(KEYS_CATEGORY, self.bind)

    def bind(self) -> None:
        """Bind the keys the settings name now (the old ones are given back first)."""
        chosen = {name: str(key) for name, key in values(KEYS_CATEGORY).items()}
        try:
            wanted = bindings(chosen)
        except KeymapError as error:
            self._on_error(f"{error}. The default keys are used until then")
            chosen, wanted = {}, bindings({})
        self.release(keep_watching=True)
        self.chosen = chosen
        self._bound = {
            key: (self._function(action), scope) for key, (action, scope) in wanted.items()
        }
        viewer = self._viewer()
        if viewer is not None:
            for owner in [viewer, *viewer.layers]:
                self.bind_on(owner)
        self._on_bound()

    def bind_on(self, owner: object) -> None:
        """Bind the keys meant for ``owner`` (the viewer, or a layer added later)."""
        is_viewer = owner is self._viewer()
        for key, (function, scope) in self._bound.items():
            if (scope == "everywhere" or (scope == "viewer" and is_viewer)) or (
                scope == "boxes" and not is_viewer and is_class_layer(owner)
            ):
                owner.bind_key(key, function, overwrite=True)

    def help_lines(self) -> list[str]:
        """The keys in force, one line per group, for the dock."""
        return key_help(self.chosen)

    def show_in_tooltips(self, controls: Mapping[QWidget, tuple[str, ...]]) -> None:
        """Say on each control which key does the same (its actions' keys, or that it has none)."""
        for control, actions in controls.items():
            keys = " or ".join(key for key in map(self.key_of, actions) if key)
            tip = f"Key: {keys}" if keys else "No key (set one in napari's Preferences, detlab)"
            control.setToolTip(tip)

    def key_of(self, action: str) -> str:
        """The key bound to ``action`` now (for a button's label), or ``""``."""
        default = next(a.key for a in ANNOTATOR_KEYS if a.name == action)
        return self.chosen.get(action, default)

    def release(self, keep_watching: bool = False) -> None:
        """Unbind every key that is still this dock's, on the viewer and its layers."""
        from napari.utils.key_bindings import coerce_keybinding

        viewer = self._viewer()
        if not keep_watching:
            self._stop_watching()
        if viewer is None:
            return
        for owner in [viewer, *viewer.layers]:
            for key, (function, _scope) in self._bound.items():
                if owner.keymap.get(coerce_keybinding(key)) is function:
                    owner.bind_key(key, None)

    def _function(self, action: str) -> KeyFunction:
        run = self._run

        def pressed(_owner: object) -> None:
            run(action)

        pressed.__name__ = f"detlab_{action}"
        return pressed


def is_class_layer(layer: object) -> bool:
    """Whether ``layer`` is an Annotator class layer, where the arrow keys act on the selected
    boxes (told by its type and name, so no reference to the dock is kept)."""
    name = str(getattr(layer, "name", ""))
    return type(layer).__name__ == "Shapes" and name.startswith(CLASS_LAYER_PREFIX)
