"""Risk of an account: positions, the cross scope and each isolated sub-ledger.

Risk is one small additive value (dYdX's ``Risk{IMR, MMR, NC}``): :class:`Risk` sums notional,
unrealized PnL, initial and maintenance margin over positions. The cross scope is the cross wallet
plus the sum over cross positions; every isolated position is a sub-ledger whose collateral is its
own isolated margin, scored by the same :func:`is_liquidatable`.

  margin balance   MB = collateral + UPNL           (cross: wallet; isolated: isolated margin)
  margin ratio     MR = MM / MB                      (rounded up; None when MB <= 0)
  available        max(0, MB - IM)                   (cross scope)
  liquidatable     the scope holds a position and MB <= MM

Cross and isolated never share collateral: the cross wallet is not an isolated position's margin
and an isolated margin is not part of the cross wallet. :func:`scopes` lists a book's scopes
(:class:`Scope`: its id, collateral, positions and risk) once, for the account report, the
engine's examination and every view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from crossmargin.core.instrument import Instrument
from crossmargin.core.liquidation import Leg, liquidation_price
from crossmargin.core.margin import initial_margin, maintenance_margin, maintenance_terms
from crossmargin.core.numbers import ZERO, round_ratio
from crossmargin.core.position import Position, PositionMode
from crossmargin.core.scope import CROSS, ScopeId
from crossmargin.core.venues import VenueRules


@dataclass(frozen=True, slots=True, kw_only=True)
class Risk:
    """Additive risk of a set of positions at given marks."""

    notional: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    initial_margin: Decimal = ZERO
    maintenance_margin: Decimal = ZERO

    def __add__(self, other: Risk) -> Risk:
        return Risk(
            notional=self.notional + other.notional,
            unrealized_pnl=self.unrealized_pnl + other.unrealized_pnl,
            initial_margin=self.initial_margin + other.initial_margin,
            maintenance_margin=self.maintenance_margin + other.maintenance_margin,
        )


def is_liquidatable(collateral: Decimal, risk: Risk) -> bool:
    """A scope with positions whose margin balance is at or below its maintenance margin."""
    return risk.notional > 0 and collateral + risk.unrealized_pnl <= risk.maintenance_margin


def margin_ratio(collateral: Decimal, risk: Risk) -> Decimal | None:
    """MM / MB, rounded up; zero without maintenance; None when the margin balance is not positive."""
    balance = collateral + risk.unrealized_pnl
    if risk.maintenance_margin == 0:
        return ZERO
    if balance <= 0:
        return None
    return round_ratio(risk.maintenance_margin / balance)


@dataclass(frozen=True, slots=True, kw_only=True)
class Book:
    """What risk needs to value an account: rules, instruments, marks, positions, cross wallet."""

    rules: VenueRules
    instruments: Mapping[str, Instrument]
    marks: Mapping[str, Decimal]
    positions: tuple[Position, ...]
    wallet_balance: Decimal
    position_mode: PositionMode = PositionMode.ONE_WAY

    def mark(self, symbol: str) -> Decimal:
        return self.marks[symbol]

    def cross_positions(self) -> tuple[Position, ...]:
        return tuple(p for p in self.positions if not p.is_isolated)


def position_risk(book: Book, position: Position, mark: Decimal | None = None) -> Risk:
    """Risk of one position at ``mark`` (default: the book's mark for its symbol)."""
    price = book.mark(position.symbol) if mark is None else mark
    instrument = book.instruments[position.symbol]
    return Risk(
        notional=position.notional(price),
        unrealized_pnl=position.unrealized_pnl(price),
        initial_margin=initial_margin(book.rules, instrument, position, price),
        maintenance_margin=maintenance_margin(book.rules, instrument, position, price),
    )


def total_risk(book: Book, positions: Sequence[Position]) -> Risk:
    total = Risk()
    for position in positions:
        total += position_risk(book, position)
    return total


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """One scope of a book now: its id, its collateral, its positions and their risk."""

    id: ScopeId
    collateral: Decimal
    positions: tuple[Position, ...]
    keys: tuple[tuple[str, str], ...]  # (symbol, slot) of each position
    risk: Risk

    @property
    def margin_balance(self) -> Decimal:
        return self.collateral + self.risk.unrealized_pnl

    @property
    def liquidatable(self) -> bool:
        return is_liquidatable(self.collateral, self.risk)

    @property
    def margin_ratio(self) -> Decimal | None:
        return margin_ratio(self.collateral, self.risk)


def slot_of(book: Book, position: Position) -> str:
    """A position's slot: ``both`` in one-way mode, its side in hedge mode."""
    return position.side.value if book.position_mode is PositionMode.HEDGE else "both"


def scopes(book: Book) -> list[Scope]:
    """The book's scopes that hold positions: the cross scope (when it has any), then one per
    isolated position in book order."""
    result = []
    cross = book.cross_positions()
    if cross:
        result.append(
            Scope(
                id=CROSS,
                collateral=book.wallet_balance,
                positions=cross,
                keys=tuple((p.symbol, slot_of(book, p)) for p in cross),
                risk=total_risk(book, cross),
            )
        )
    for position in book.positions:
        if position.is_isolated:
            margin = position.isolated_margin if position.isolated_margin is not None else ZERO
            key = (position.symbol, slot_of(book, position))
            result.append(
                Scope(
                    id=ScopeId.isolated(*key),
                    collateral=margin,
                    positions=(position,),
                    keys=(key,),
                    risk=position_risk(book, position),
                )
            )
    return result


def position_liquidation_price(book: Book, position: Position) -> Decimal | None:
    """Liquidation price of ``position`` with everything else held at its mark."""
    if position.is_isolated:
        return _isolated_liquidation_price(book, position)
    return _CrossLevels(book).price(position.symbol)


def _isolated_liquidation_price(book: Book, position: Position) -> Decimal | None:
    legs = [Leg(position=position, instrument=book.instruments[position.symbol])]
    own_margin = position.isolated_margin if position.isolated_margin is not None else ZERO
    return liquidation_price(book.rules, legs, own_margin, book.mark(position.symbol))


class _CrossLevels:
    """The cross positions' liquidation prices, one solve per symbol.

    Every cross position of a symbol shares one price: its symbol's legs move while the others
    are held at their marks, contributing ``UPNL - MM`` each (the fixed part). Each position's
    contribution is computed once, and the fixed part of each symbol is summed in the book's
    order, so the result is the same Decimal as summing afresh for every position, at the cost
    of one pass per symbol instead of one per position (an account report over n positions was
    quadratic in bracket lookups).
    """

    def __init__(self, book: Book) -> None:
        self.book = book
        self.cross = book.cross_positions()
        self.contributions: list[Decimal] | None = None
        self.prices: dict[str, Decimal | None] = {}

    def _contribution(self, other: Position) -> Decimal:
        book = self.book
        other_mark = book.mark(other.symbol)
        terms = maintenance_terms(book.rules, book.instruments[other.symbol], other, other_mark)
        return other.unrealized_pnl(other_mark) - terms.at(other_mark)

    def price(self, symbol: str) -> Decimal | None:
        if symbol in self.prices:
            return self.prices[symbol]
        book = self.book
        if self.contributions is None:
            self.contributions = [self._contribution(p) for p in self.cross]
        fixed = book.wallet_balance
        for other, contribution in zip(self.cross, self.contributions, strict=True):
            if other.symbol != symbol:
                fixed += contribution
        moving = [p for p in self.cross if p.symbol == symbol]
        legs = [Leg(position=p, instrument=book.instruments[p.symbol]) for p in moving]
        price = liquidation_price(book.rules, legs, fixed, book.mark(symbol))
        self.prices[symbol] = price
        return price


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionReport:
    position: Position
    mark_price: Decimal
    bracket_index: int
    risk: Risk
    liquidation_price: Decimal | None
    margin_balance: Decimal | None  # isolated only
    margin_ratio: Decimal | None
    liquidatable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountReport:
    """The cross scope's figures, the isolated totals and every position's report."""

    book: Book
    cross: Risk
    margin_balance: Decimal
    available_balance: Decimal
    margin_ratio: Decimal | None
    cross_liquidatable: bool
    isolated_margin: Decimal
    isolated_unrealized_pnl: Decimal
    positions: tuple[PositionReport, ...]

    @property
    def liquidatable(self) -> bool:
        """Anything in the account is liquidatable now: the cross scope or an isolated position."""
        return self.cross_liquidatable or any(p.liquidatable for p in self.positions)

    @property
    def equity(self) -> Decimal:
        """Everything the account holds: cross margin balance plus isolated margin balances."""
        return self.margin_balance + self.isolated_margin + self.isolated_unrealized_pnl


def account_report(book: Book) -> AccountReport:
    """Value every position and scope of ``book`` at its marks."""
    listed = scopes(book)
    cross_scope = next((scope for scope in listed if scope.id.is_cross), None)
    cross = Risk() if cross_scope is None else cross_scope.risk
    cross_balance = book.wallet_balance + cross.unrealized_pnl
    cross_ratio = margin_ratio(book.wallet_balance, cross)
    cross_liquidatable = is_liquidatable(book.wallet_balance, cross)
    isolated = {scope.positions[0]: scope for scope in listed if not scope.id.is_cross}
    reports: list[PositionReport] = []
    cross_levels = _CrossLevels(book)
    for position in book.positions:
        mark = book.mark(position.symbol)
        own = isolated.get(position) if position.is_isolated else None
        risk = position_risk(book, position) if own is None else own.risk
        bracket_index = maintenance_terms(
            book.rules, book.instruments[position.symbol], position, mark
        ).bracket_index
        if own is not None:
            balance: Decimal | None = own.margin_balance
            ratio, liquidatable = own.margin_ratio, own.liquidatable
            price = _isolated_liquidation_price(book, position)
        else:
            balance, ratio, liquidatable = None, cross_ratio, cross_liquidatable
            price = cross_levels.price(position.symbol)
        reports.append(
            PositionReport(
                position=position,
                mark_price=mark,
                bracket_index=bracket_index,
                risk=risk,
                liquidation_price=price,
                margin_balance=balance,
                margin_ratio=ratio,
                liquidatable=liquidatable,
            )
        )
    isolated_scopes = list(isolated.values())
    return AccountReport(
        book=book,
        cross=cross,
        margin_balance=cross_balance,
        available_balance=max(ZERO, cross_balance - cross.initial_margin),
        margin_ratio=cross_ratio,
        cross_liquidatable=cross_liquidatable,
        isolated_margin=sum((scope.collateral for scope in isolated_scopes), ZERO),
        isolated_unrealized_pnl=sum((scope.risk.unrealized_pnl for scope in isolated_scopes), ZERO),
        positions=tuple(reports),
    )
