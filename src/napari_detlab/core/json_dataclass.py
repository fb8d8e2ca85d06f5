"""JSON round trips for the project's settings dataclasses (model config, training options).

Both travel as JSON into run folders and checkpoints and come back from files users edit by
hand, so they share one strict reader: unknown keys are refused with their names (a typo in
``anchor_szes`` must not silently train the defaults), and errors are the class's own
``ValueError`` subclass so the CLI prints one line.
"""

from __future__ import annotations

import json
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
