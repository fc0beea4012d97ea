"""The vectorised risk path: numpy twins of core.risk and core.liquidation, for many accounts.

One converter (:mod:`crossmargin.batch.convert`) turns core objects into a struct of arrays;
:mod:`~crossmargin.batch.maintenance` holds the maintenance formula every kernel uses,
:mod:`~crossmargin.batch.risk` revalues a book (full or one-symbol tick),
:mod:`~crossmargin.batch.liquidation` solves liquidation prices, :mod:`~crossmargin.batch.screen`
flags the scopes the exact core should look at (whole books, Ray shards, and the engine's live
book of :mod:`~crossmargin.batch.live`), :mod:`~crossmargin.batch.stress` runs shock grids and
:mod:`~crossmargin.batch.montecarlo` estimates liquidation probabilities. The batch path screens;
the Decimal path decides.
"""

from crossmargin.batch._accel import compile_notice

__all__ = ["compile_notice"]
