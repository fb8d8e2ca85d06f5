"""The model helping the person annotate: pre-labels ahead of ``n``, and what to label next.

A face: it re-exports the public names (``__all__``) of the modules below and defines
nothing; code inside the project imports from the modules themselves.
"""

from . import prelabels, ranking
from .prelabels import *
from .ranking import *

__all__ = [*prelabels.__all__, *ranking.__all__]
