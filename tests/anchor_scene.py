"""A 256x256 image whose boxes have a known anchor answer, for the anchor tests.

Under the fast preset a 256x256 image is not resized: the square 64 px anchor of level 2
(stride 16) centred at (128, 128) is exactly :data:`EXACT` (best IoU 1), and the 2x190
:data:`LINE` fits no anchor at all.
"""

from __future__ import annotations

SIZE = (256, 256)
EXACT = [96.0, 96.0, 160.0, 160.0]
LINE = [10.0, 10.0, 12.0, 200.0]
