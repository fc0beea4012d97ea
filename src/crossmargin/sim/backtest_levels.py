"""Price levels a backtest posts between two candle marks, computed by the exact core.

Along one leg the price of one symbol moves monotonically from ``current`` to ``target`` (see
:mod:`crossmargin.sim.backtest`). A scope's margin balance minus maintenance is monotone in one
symbol's price (one-way positions, maintenance rates below 1), so:

* a liquidation level lies on the leg only if the scope is liquidatable at ``target``; it is the
  reported liquidation price (:func:`crossmargin.core.risk.position_liquidation_price`, rounded
  toward the mark), moved one ``PRICE_QUANTUM`` further when that rounding left it a hair above
  maintenance, so that posting it does liquidate;
* a top-up trigger (an isolated margin ratio reaching ``trigger``) is found by bisection on the
  leg, to ``PRICE_QUANTUM``, on the side where the ratio has reached the trigger.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from crossmargin.core.numbers import PRICE_QUANTUM, ZERO
from crossmargin.core.position import Position
from crossmargin.core.risk import (
    Book,
    is_liquidatable,
    margin_ratio,
    position_liquidation_price,
    total_risk,
)


def _at(book: Book, position: Position, price: Decimal) -> Book:
    return dataclasses.replace(book, marks={**book.marks, position.symbol: price})


def scope_liquidatable(book: Book, position: Position, price: Decimal) -> bool:
    """Would the scope holding ``position`` be liquidatable with its symbol at ``price``?"""
    trial = _at(book, position, price)
    if position.is_isolated:
        collateral = position.isolated_margin if position.isolated_margin is not None else ZERO
        return is_liquidatable(collateral, total_risk(trial, [position]))
    return is_liquidatable(book.wallet_balance, total_risk(trial, trial.cross_positions()))


def isolated_ratio(book: Book, position: Position, price: Decimal) -> Decimal | None:
    """An isolated position's margin ratio with its symbol at ``price`` (None: MB <= 0)."""
    collateral = position.isolated_margin if position.isolated_margin is not None else ZERO
    return margin_ratio(collateral, total_risk(_at(book, position, price), [position]))


def triggering_liquidation_price(book: Book, position: Position) -> Decimal | None:
    """The reported liquidation price, or the nearest price beyond it that liquidates."""
    price = position_liquidation_price(book, position)
    if price is None:
        return None
    away = -PRICE_QUANTUM if price < book.mark(position.symbol) else PRICE_QUANTUM
    for _ in range(3):
        if price <= 0:
            return None
        if scope_liquidatable(book, position, price):
            return price
        price += away
    return price


def top_up_level(
    book: Book, position: Position, current: Decimal, target: Decimal, trigger: Decimal
) -> Decimal | None:
    """Where an isolated position's margin ratio first reaches ``trigger`` between ``current``
    (not reached) and ``target`` (reached); None when the leg does not cross it."""

    def reached(price: Decimal) -> bool:
        ratio = isolated_ratio(book, position, price)
        return ratio is None or ratio >= trigger

    if reached(current) or not reached(target):
        return None
    healthy, hit = current, target
    while abs(hit - healthy) > PRICE_QUANTUM:
        middle = ((healthy + hit) / 2).quantize(PRICE_QUANTUM)
        if middle in (healthy, hit):
            break
        if reached(middle):
            hit = middle
        else:
            healthy = middle
    return hit
