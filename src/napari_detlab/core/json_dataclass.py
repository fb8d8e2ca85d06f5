"""JSON round trips for the project's settings dataclasses (model config, training options).

Both travel as JSON into run folders and checkpoints and come back from files users edit by
hand, so they share one strict reader: unknown keys are refused with their names (a typo in
``anchor_szes`` must not silently train the defaults), every value must have its field's type
(``{"fpn": "false"}`` is a string, which Python would read as *true*; ``{"classes": "cell"}``
is one name, not four letters; ``{"epochs": "2"}`` is text), and errors are the class's own
:class:`~napari_detlab.core.errors.DetlabError` subclass, naming the field and the fix, so
the CLI prints one line and the docks one notification.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from napari_detlab.core.atomic import atomic_write_bytes

__all__ = ["JsonDataclass"]

T = TypeVar("T", bound="JsonDataclass")


class JsonDataclass:
    """Mixin for a ``@dataclass``: ``to_dict``/``from_dict``/``to_json``/``from_json``.

    Subclasses set ``json_error`` (the exception raised for bad input) and ``json_what`` (how
    messages name the thing, e.g. ``"config"``).
    """

    json_error: ClassVar[type[ValueError]] = ValueError
    json_what: ClassVar[str] = "settings"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise cls.json_error(
                f"{cls.json_what} must be a JSON object, got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
        if unknown:
            raise cls.json_error(f"unknown {cls.json_what} field(s): {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        for name, value in data.items():
            problem = _type_problem(value, hints[name])
            if problem is not None:
                raise cls.json_error(f"{cls.json_what} field {name!r} {problem}")
        return cls(**data)

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            atomic_write_bytes(path, (text + "\n").encode("utf-8"))
        return text

    @classmethod
    def from_json(cls: type[T], path_or_text: str | Path) -> T:
        """Parse JSON text (a string starting with ``{``) or read a JSON file."""
        if isinstance(path_or_text, str) and path_or_text.lstrip().startswith("{"):
            text, source = path_or_text, "JSON text"
        else:
            path = Path(path_or_text)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such {cls.json_what} file")
            try:
                text, source = path.read_text(encoding="utf-8"), str(path)
            except OSError as error:
                raise cls.json_error(f"{path}: cannot read {cls.json_what} ({error})") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise cls.json_error(f"{source}: not valid JSON ({error})") from error
        return cls.from_dict(data)


def _describe(kind: object) -> str:
    """How a message names a type: ``"true or false"``, ``"a number"``, ``"a list of ..."``."""
    if kind is bool:
        return "true or false"
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if kind is str:
        return "a text in quotes"
    if kind is type(None):
        return "null"
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return {
            str: 'a list of texts, e.g. ["cell", "crystal"]',
            float: "a list of numbers, e.g. [0.5, 1, 2]",
        }.get(args[0], "a list of lists of numbers, one per feature map, e.g. [[32], [64]]")
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    return str(kind)


def _matches(value: object, kind: object) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is type(None):
        return value is None
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return isinstance(value, (list, tuple)) and all(_matches(item, args[0]) for item in value)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    return True  # a type this reader does not know: the dataclass checks it


def _type_problem(value: object, kind: object) -> str | None:
    """Why ``value`` cannot be a field of type ``kind`` and how to write it; ``None`` if it can."""
    if _matches(value, kind):
        return None
    expected = _describe(kind)
    if isinstance(value, str) and typing.get_origin(kind) is list:
        return f"must be {expected}, got the text {value!r}; write [{json.dumps(value)}]"
    if isinstance(value, str) and value.strip():
        unquoted = value.strip().lower()
        try:
            json.loads(unquoted)
        except ValueError:
            hint = ""
        else:
            hint = f"; write {unquoted} without quotes"
        return f"must be {expected}, got the text {value!r}{hint}"
    return f"must be {expected}, got {json.dumps(value)}"
