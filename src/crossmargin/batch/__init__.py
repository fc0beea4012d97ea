"""The vectorised risk path: numpy twins of core.risk and core.liquidation, for many accounts.

One converter (:mod:`crossmargin.batch.convert`) turns core objects into a struct of arrays;
:mod:`~crossmargin.batch.risk` revalues it (full or one-symbol tick),
:mod:`~crossmargin.batch.liquidation` solves liquidation prices, :mod:`~crossmargin.batch.candidates`
flags candidates for the exact core, :mod:`~crossmargin.batch.stress` runs shock grids and
:mod:`~crossmargin.batch.montecarlo` estimates liquidation probabilities. The batch path screens;
the Decimal path decides.
"""
