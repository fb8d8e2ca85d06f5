"""The one base class of the errors napari-detlab raises on purpose.

Every error that describes the user's input rather than a bug in this code (a bad annotation
file, a refused config, an unreadable image, a class still in use, a checkpoint of another
model) derives from :class:`DetlabError`, and its message is one line that names the file or
field and, where there is one, the fix. The places that turn errors into something a person
reads catch this class: the CLI prints the line and exits with code 2, the docks show a napari
notification. Catching ``ValueError`` there instead would also swallow a programming error
and hide it behind a polite message.

The subclasses live beside the code that raises them (``AnnotationError`` in the store,
``ConfigError`` beside the config, ...). Most also derive from ``ValueError`` (or
``FileNotFoundError``), so a script written against an earlier version keeps working.
"""

from __future__ import annotations

__all__ = ["DetlabError"]


class DetlabError(Exception):
    """A problem with the user's files, settings or data; the message says which and why."""
