"""napari-detlab: build a custom object detector in one napari viewer.

The Qt-free logic lives in :mod:`napari_detlab.core` (and :mod:`napari_detlab.formats`);
the napari widgets in :mod:`napari_detlab._qt` only read state, call the core and draw layers.
"""

import os
import sys

__version__ = "0.1.0"


def keep_triton_out_of_napari() -> None:
    """Stop Triton from loading into a napari process.

    Triton (pulled in by ``torchvision.ops`` through ``torch._dynamo`` on CUDA builds of torch)
    ships its own LLVM; loaded after a software-OpenGL context (Mesa's llvmpipe, also built on
    LLVM) exists, it crashes the whole viewer with a segmentation fault. napari-detlab never
    uses ``torch.compile``, so in a process that already imported napari Triton is marked
    absent, which torch handles as "not installed". ``DETLAB_ALLOW_TRITON=1`` opts out.
    """
    if "napari" in sys.modules and os.environ.get("DETLAB_ALLOW_TRITON") != "1":
        sys.modules.setdefault("triton", None)


keep_triton_out_of_napari()  # napari imported first: the plugin is loading into a viewer
