"""crossmargin: a margin and liquidation engine for crypto derivatives.

Cross and isolated margin computed the way the venues publish it, in exact decimal arithmetic.
The pure domain lives in :mod:`crossmargin.core`; the command line in :mod:`crossmargin.cli`.
"""

__version__ = "0.1.0"
