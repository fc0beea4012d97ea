"""Per-position margin formulas, parameterised by venue rules.

Units: quantities in base units, prices and margins in the settle asset (USD).

  initial margin      IM = q * P_mark / leverage  (+ q * P_bankrupt * taker, Bybit's fee to close)
  maintenance margin  MM = q * P_val * (MMR_k + fee_buffer) - cum_k
                      k = bracket of q * P_val; P_val = P (mark, or a candidate price while solving
                      for a liquidation price), or the entry price for Bybit isolated positions;
                      fee_buffer = taker fee rate on OKX, else 0; cum_k = 0 on OKX.

Within one bracket MM is affine in the price: ``MM(P) = constant + per_price * P``. The liquidation
solver works segment by segment on that form, so this module returns it as
:class:`MaintenanceTerms`. Requirements are rounded up (``round_requirement``) only where they
are reported; the solver uses exact values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import ONE, ZERO, round_requirement
from crossmargin.core.position import Position, Side
from crossmargin.core.venues import VenueRules


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenanceTerms:
    """MM(P) = constant + per_price * P, valid while the bracket stays ``bracket_index``."""

    bracket_index: int
    constant: Decimal
    per_price: Decimal

    def at(self, price: Decimal) -> Decimal:
        return self.constant + self.per_price * price


def maintenance_valued_at_entry(rules: VenueRules, position: Position) -> bool:
    return rules.isolated_maintenance_at_entry and position.is_isolated


def maintenance_terms(
    rules: VenueRules, instrument: Instrument, position: Position, price: Decimal
) -> MaintenanceTerms:
    """The affine maintenance form for ``position`` with its bracket read at ``price``."""
    at_entry = maintenance_valued_at_entry(rules, position)
    valuation_price = position.entry_price if at_entry else price
    index = instrument.bracket_index(position.quantity * valuation_price)
    bracket = instrument.brackets[index]
    rate = bracket.maintenance_margin_rate
    if rules.fee_buffer_in_maintenance:
        rate += instrument.taker_fee_rate
    deduction = bracket.maintenance_amount if rules.maintenance_deduction else ZERO
    if at_entry:
        return MaintenanceTerms(
            bracket_index=index,
            constant=position.entry_notional * rate - deduction,
            per_price=ZERO,
        )
    return MaintenanceTerms(
        bracket_index=index, constant=-deduction, per_price=position.quantity * rate
    )


def maintenance_margin(
    rules: VenueRules, instrument: Instrument, position: Position, mark: Decimal
) -> Decimal:
    """MM at ``mark``, rounded up to the money quantum."""
    return round_requirement(maintenance_terms(rules, instrument, position, mark).at(mark))


def isolated_bankruptcy_price(position: Position) -> Decimal:
    """Price at which margin of exactly 1/leverage of entry notional is used up: EP*(1 -/+ 1/lev)."""
    step = ONE / position.leverage
    factor = ONE - step if position.side is Side.LONG else ONE + step
    return position.entry_price * factor


def close_fee_estimate(instrument: Instrument, position: Position) -> Decimal:
    """Bybit's estimated fee to close: q x bankruptcy price x taker fee rate."""
    return position.quantity * isolated_bankruptcy_price(position) * instrument.taker_fee_rate


def initial_margin(
    rules: VenueRules, instrument: Instrument, position: Position, mark: Decimal
) -> Decimal:
    """IM at ``mark`` (plus the fee to close where the venue charges it), rounded up."""
    amount = position.quantity * mark / position.leverage
    if rules.close_fee_in_initial_margin:
        amount += close_fee_estimate(instrument, position)
    return round_requirement(amount)


def open_loss(side: Side, quantity: Decimal, price: Decimal, mark: Decimal) -> Decimal:
    """Binance's open loss of an order: ``qty * |min(0, dir * (mark - price))|``, dir +1 buy."""
    return quantity * abs(min(ZERO, side.sign * (mark - price)))


def open_order_cost(
    *, side: Side, quantity: Decimal, price: Decimal, mark: Decimal, leverage: Decimal
) -> Decimal:
    """Margin an order reserves: ``IM (qty * price / leverage) + open loss``, exact."""
    return quantity * price / leverage + open_loss(side, quantity, price, mark)
