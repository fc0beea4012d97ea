"""The pure domain: instruments and brackets, positions, risk, liquidation prices, venue rules.

Stdlib only, deterministic, no I/O beyond reading the package's own bundled data tables.
Everything else in crossmargin depends on this package; it depends on nothing of ours.
"""
