"""A small dataset whose statistics are known by hand, shared by the core, CLI and dock tests.

Six 200 x 200 images:

- ``img1.png``: 3 boxes, ``cell`` 10 x 10 (small), ``cell`` 40 x 40 (medium), ``crystal``
  100 x 100 (large);
- ``img2.png``: 1 box, ``cell`` 20 x 30 (small);
- ``img3.png``: reviewed, no boxes (a negative);
- ``img4.png``: no file (untouched);
- ``img5.png``: a file with neither boxes nor the reviewed flag (untouched, as the store says);
- ``img6.png``: a file that is not a ``.pt`` (unreadable).

The class list is ``cell, crystal, debris``: ``debris`` has no box.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np

from napari_detlab.core.annotations.annotation import ImageAnnotation
from napari_detlab.core.annotations.store import AnnotationStore, ClassSpec

SIZE = 200
CLASSES = ("cell", "crystal", "debris")


def annotation(boxes: list[list[float]], labels: list[str], reviewed: bool = True):
    """An annotation of one of the dataset's images."""
    return ImageAnnotation(
        np.array(boxes, np.float32).reshape(-1, 4),
        labels,
        reviewed=reviewed,
        image_size=(SIZE, SIZE),
    )


def write_known_dataset(folder: Path) -> Path:
    """Write the dataset described above into ``folder`` (created); returns it."""
    folder.mkdir(parents=True)
    for i in range(1, 7):
        iio.imwrite(folder / f"img{i}.png", np.full((SIZE, SIZE, 3), 40 * i, np.uint8))
    store = AnnotationStore(folder)
    store.save_classes([ClassSpec(name, "#ffffff") for name in CLASSES])
    store.save(
        "img1.png",
        annotation(
            [[0, 0, 10, 10], [50, 50, 90, 90], [100, 100, 200, 200]], ["cell", "cell", "crystal"]
        ),
    )
    store.save("img2.png", annotation([[5, 5, 25, 35]], ["cell"]))
    store.save("img3.png", annotation([], []))
    store.save("img5.png", annotation([], [], reviewed=False))
    store.path_for("img6.png").write_bytes(b"not a torch file")
    return folder
