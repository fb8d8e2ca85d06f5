"""napari-detlab: build a custom object detector in one napari viewer.

The Qt-free logic lives in :mod:`napari_detlab.core` (and :mod:`napari_detlab.formats`);
the napari widgets in :mod:`napari_detlab._qt` only read state, call the core and draw layers.
"""

__version__ = "0.1.0"
