"""The napari side: five docks over the Qt-free core, the session they share, and their parts.

- the docks: :mod:`.annotator`, :mod:`.anchor_viewer`, :mod:`.train_dock`, :mod:`.review`,
  :mod:`.statistics_dock`;
- how docks live and talk: :mod:`.session` (the one hub of a viewer's docks),
  :mod:`.lifecycle` (a dock's end, its tab's visibility), :mod:`.jobs` (background work on
  napari's workers);
- drawing in napari: :mod:`.box_layers` (the one place boxes meet Shapes layers),
  :mod:`.shader_reuse`, :mod:`.napari_internals` (every private napari / vispy access);
- :mod:`.widgets`: the small Qt widgets the docks are built from.

The dock classes are imported on first use, so napari loading one dock from the plugin
manifest does not build the others.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "annotator": ["AnnotatorWidget"],
        "anchor_viewer": ["AnchorViewerWidget"],
        "review": ["ReviewWidget"],
        "statistics_dock": ["StatisticsWidget"],
        "train_dock": ["TrainDockWidget"],
    },
)
