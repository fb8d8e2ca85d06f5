"""The Annotator's keys: what each does, its default, and checks on a person's own choice.

Labelling is keyboard work: next image, class, redo, "reviewed", copy the previous image's
boxes and nudging boxes are pressed thousands of times an afternoon. Each key is a setting a
person can change in napari's Preferences (the plugin manifest declares them with these
defaults; a test keeps the two equal), and the dock shows the keys in force. Key names are
napari's (``"Control-Shift-Z"``, ``"Alt-Left"``); ``Control`` is Cmd on macOS.

The defaults avoid napari's own keys: the Shapes layer binds letters to its modes (``r``
rectangle, ``b`` to back, which our ``b`` shadows on purpose) and the digits 1-7, so a class is
chosen with ``Control`` + its number, as in CVAT; ``Control-Y`` (also redo) shadows napari's
2D/3D toggle while the Annotator is open. Accepting the model's proposals is ``Shift-A``: the
Shapes layer's ``a`` selects all shapes, and only the Points layer binds ``Shift-A`` (select
all, appending), which the Annotator's layers never are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from napari_detlab.core.errors import DetlabError

__all__ = [
    "ANNOTATOR_KEYS",
    "CLASS_KEY_COUNT",
    "NUDGES",
    "KeyAction",
    "KeymapError",
    "bindings",
    "key_help",
    "normalized_key",
]

# Where a key is bound: on the viewer and every layer (it works whatever layer is chosen),
# on the viewer only (Labels layers keep their own Ctrl+Z / Ctrl+Shift+Z), or on the class
# layers only (the arrow keys act on their selected boxes; elsewhere they keep napari's use).
Scope = Literal["everywhere", "viewer", "boxes"]

CLASS_KEY_COUNT = 9  # classes 1-9 get a key: modifier + digit


@dataclass(frozen=True)
class KeyAction:
    """One thing a key does in the Annotator.

    Attributes
    ----------
    name
        The setting's name, and the action the dock runs.
    key
        The default key (napari's spelling), or, for ``class_modifier`` and
        ``fine_modifier``, the default modifier.
    title
        What a person reads in the dock's key list and in Preferences.
    scope
        Where it is bound (see :data:`Scope`).
    """

    name: str
    key: str
    title: str
    scope: Scope = "everywhere"


ANNOTATOR_KEYS: tuple[KeyAction, ...] = (
    KeyAction("next_image", "n", "next image"),
    KeyAction("previous_image", "b", "previous image"),
    KeyAction("undo", "Control-Z", "undo", "viewer"),
    KeyAction("redo", "Control-Shift-Z", "redo", "viewer"),
    KeyAction("redo_second_key", "Control-Y", "redo (second key)", "viewer"),
    KeyAction("toggle_reviewed", "k", "mark reviewed / not reviewed"),
    KeyAction("copy_previous", "Control-Shift-V", "copy the previous image's boxes"),
    KeyAction("accept_proposals", "Shift-A", "accept the model's proposals"),
    KeyAction("class_modifier", "Control", "with 1-9: draw that class"),
    KeyAction("move_left", "Left", "move selected boxes left", "boxes"),
    KeyAction("move_right", "Right", "move selected boxes right", "boxes"),
    KeyAction("move_up", "Up", "move selected boxes up", "boxes"),
    KeyAction("move_down", "Down", "move selected boxes down", "boxes"),
    KeyAction("narrow", "Shift-Left", "make selected boxes narrower", "boxes"),
    KeyAction("widen", "Shift-Right", "make selected boxes wider", "boxes"),
    KeyAction("shorten", "Shift-Up", "make selected boxes shorter", "boxes"),
    KeyAction("lengthen", "Shift-Down", "make selected boxes taller", "boxes"),
    KeyAction("fine_modifier", "Alt", "with a move or resize key: one pixel", "boxes"),
)

# What each arrow action does to the selected boxes, in steps: (move x, move y, grow x, grow y).
NUDGES: dict[str, tuple[int, int, int, int]] = {
    "move_left": (-1, 0, 0, 0),
    "move_right": (1, 0, 0, 0),
    "move_up": (0, -1, 0, 0),
    "move_down": (0, 1, 0, 0),
    "narrow": (0, 0, -1, 0),
    "widen": (0, 0, 1, 0),
    "shorten": (0, 0, 0, -1),
    "lengthen": (0, 0, 0, 1),
}

_MODIFIERS = ("Control", "Shift", "Alt", "Meta")
_ALIASES = {"ctrl": "Control", "cmd": "Meta", "command": "Meta", "option": "Alt", "super": "Meta"}


class KeymapError(DetlabError):
    """Two actions were given one key, or a key is not one napari can bind."""


def normalized_key(key: str) -> str:
    """``key`` in one spelling: ``"ctrl+shift+z"`` -> ``"Control-Shift-Z"``, ``"N"`` -> ``"n"``.

    Modifiers come first in a fixed order, so two spellings of one key compare equal.
    """
    parts = [p.strip() for p in re.split(r"[-+](?=.)", key.strip()) if p.strip()]
    if not parts:
        return ""
    modifiers = {_ALIASES.get(p.lower(), p.capitalize()) for p in parts[:-1]}
    unknown = modifiers - set(_MODIFIERS)
    if unknown:
        raise KeymapError(f"{key!r}: {', '.join(sorted(unknown))} is not a modifier")
    last = parts[-1]
    if len(last) == 1:
        last = last.upper() if modifiers else last.lower()
    else:
        last = last[0].upper() + last[1:]
    return "-".join([*(m for m in _MODIFIERS if m in modifiers), last])


def bindings(chosen: Mapping[str, str]) -> dict[str, tuple[str, Scope]]:
    """Every key to bind, as ``{key: (action, scope)}``, from a person's choices.

    ``chosen`` maps action names to keys (missing ones take the default; an empty key
    leaves the action unbound). Class keys become ``class_1`` ... ``class_9``; each move or
    resize key also gets its one-pixel variant with the fine modifier.

    Raises
    ------
    KeymapError
        Two actions share a key (naming both, so the person knows which to change).
    """
    settings = {a.name: chosen.get(a.name, a.key) for a in ANNOTATOR_KEYS}
    wanted: list[tuple[str, str, Scope]] = []
    for action in ANNOTATOR_KEYS:
        key = settings[action.name].strip()
        if not key or action.name.endswith("_modifier"):
            continue
        wanted.append((normalized_key(key), action.name, action.scope))
        fine = settings["fine_modifier"].strip()
        if action.name in NUDGES and fine:
            wanted.append((normalized_key(f"{fine}-{key}"), f"{action.name}_fine", action.scope))
    modifier = settings["class_modifier"].strip()
    for number in range(1, CLASS_KEY_COUNT + 1):
        key = f"{modifier}-{number}" if modifier else str(number)
        wanted.append((normalized_key(key), f"class_{number}", "everywhere"))
    found: dict[str, tuple[str, Scope]] = {}
    for key, name, scope in wanted:
        if key in found:
            raise KeymapError(
                f"the key {key} is set for both {_title(found[key][0])} and {_title(name)}; "
                "change one in napari's Preferences (detlab, Annotator keys)"
            )
        found[key] = (name, scope)
    return found


def key_help(chosen: Mapping[str, str]) -> list[str]:
    """The keys in force, one line per group of actions, for the dock to show.

    ``["n / b: next / previous image", "Control-Z / Control-Shift-Z / Control-Y: undo / redo",
    ...]``; unbound actions are left out.
    """
    settings = {a.name: chosen.get(a.name, a.key).strip() for a in ANNOTATOR_KEYS}
    lines = []
    for names, what in _HELP_GROUPS:
        keys = [settings[name] for name in names if settings[name]]
        if keys:
            lines.append(f"{' / '.join(keys)}: {what}")
    modifier = settings["class_modifier"]
    lines.insert(2, f"{modifier + '-' if modifier else ''}1…{CLASS_KEY_COUNT}: draw class 1-9")
    if settings["fine_modifier"] and lines[-1].endswith("resize them"):
        lines[-2] += f" ({settings['fine_modifier']} with any of these: one pixel)"
    return lines


_HELP_GROUPS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("next_image", "previous_image"), "next / previous image"),
    (("undo", "redo", "redo_second_key"), "undo / redo"),
    (("toggle_reviewed",), "mark reviewed / not reviewed"),
    (("copy_previous",), "copy the previous image's boxes"),
    (("accept_proposals",), "accept the model's proposals"),
    (("move_left", "move_right", "move_up", "move_down"), "move selected boxes"),
    (("narrow", "widen", "shorten", "lengthen"), "resize them"),
)


def _title(name: str) -> str:
    base = name.removesuffix("_fine")
    if base.startswith("class_"):
        return f"draw class {base.removeprefix('class_')}"
    title = next(a.title for a in ANNOTATOR_KEYS if a.name == base)
    return f"{title} (one pixel)" if name.endswith("_fine") else title
