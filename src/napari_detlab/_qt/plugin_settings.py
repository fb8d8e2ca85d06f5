"""napari-detlab's settings, kept by napari: shown in its Preferences, saved between starts.

The plugin manifest declares them (``contributions.configurations``: the Annotator's keys and
its other settings); napari builds a Preferences page from that, saves what a person changes
in its own ``napari-detlab.yaml`` beside napari's settings and tells listeners of every
change. Only napari's public API is used. A dock made outside napari's plugin system (a script
that builds the widget while the plugin is not registered) reads the defaults it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from napari.settings import PluginSettings
    from pydantic import BaseModel

__all__ = [
    "PLUGIN_NAME",
    "detlab_settings",
    "remember",
    "remember_all",
    "setting",
    "values",
    "watch",
]

PLUGIN_NAME = "napari-detlab"
Value = TypeVar("Value", bool, int, float, str)


def detlab_settings() -> PluginSettings | None:
    """This plugin's settings object, or ``None`` when napari does not know the plugin.

    Asked for each time: napari makes a new object when plugins are registered or enabled.
    """
    from napari.settings import get_plugin_settings

    try:
        return get_plugin_settings(PLUGIN_NAME)
    except KeyError:
        return None


def _group(category: str) -> BaseModel | None:
    """The settings group ``category`` (a pydantic model), or ``None`` without napari's settings."""
    settings = detlab_settings()
    return getattr(settings, category, None) if settings is not None else None


def setting(category: str, name: str, default: Value) -> Value:
    """The value of ``category.name``, or ``default`` without napari's settings."""
    group = _group(category)
    value = getattr(group, name, default) if group is not None else default
    return type(default)(value)


def values(category: str) -> dict[str, object]:
    """Every value of ``category`` (empty without napari's settings)."""
    group = _group(category)
    return {} if group is None else dict(group.model_dump())


def remember(category: str, name: str, value: bool | int | float | str) -> None:
    """Set ``category.name`` to ``value``; napari saves it at once. Out-of-range values (which
    napari's settings refuse) are not remembered: the setting keeps its last good value."""
    group = _group(category)
    if group is None or getattr(group, name, value) == value:
        return
    try:
        setattr(group, name, value)
    except ValueError:  # pydantic's ValidationError: a value outside the declared range
        return


def remember_all(category: str, chosen: Mapping[str, bool | int | float | str]) -> None:
    """Remember every value of ``chosen`` in ``category`` (see :func:`remember`)."""
    for name, value in chosen.items():
        remember(category, name, value)


def watch(category: str, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after any value of ``category`` changes (Preferences included);
    returns the function that stops watching."""
    settings = detlab_settings()
    if settings is None:
        return lambda: None

    def changed(event: object) -> None:
        if str(getattr(event, "key", "")).split(".")[0] == category:
            callback()

    settings.events.changed.connect(changed)
    return lambda: settings.events.changed.disconnect(changed)
