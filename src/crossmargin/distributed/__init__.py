"""The batch risk path spread over a Ray cluster (the optional extra ``crossmargin[distributed]``).

A book is split by account id into shards (:mod:`~crossmargin.distributed.shard`, plain numpy:
account ``a`` lives in shard ``a % shards``); each shard is held by one Ray actor that loads it
from the book's source (:mod:`~crossmargin.distributed.source`: a portfolio file, an array
snapshot or a seeded synthetic spec) and can be rebuilt from it when it dies.
:mod:`~crossmargin.distributed.cluster` drives the actors: price ticks are broadcast, stress grids
and Monte Carlo are split across shards (and across shock slices when there are more workers than
shards) and combined into the batch path's own result types.

Only :mod:`~crossmargin.distributed.cluster` imports ``ray``; importing this package does not.
"""
