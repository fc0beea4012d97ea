"""Engine state: accounts, positions, open orders, marks, insurance fund and the money ledgers.

State is a projection of the event log. Values inside are immutable (frozen dataclasses, and
dicts that are replaced, never mutated in place), so a :class:`Draft` can overlay changes on the
live state while a command is decided and be merged (accepted) or dropped (rejected): a rejected
command changes nothing.

Money ledgers (per settle asset; the engine runs one settle asset). Every balance change is an
event carrying postings that sum to zero:
  wallet:<account>                         cross wallet
  isolated:<account>:<symbol>:<side>       an isolated position's margin
  insurance_fund, fee_income
  bad_debt                                 the venue's unrecovered losses (only ever negative)
  external:deposits, external:trading, external:funding, external:insurance
                                           money crossing the engine's boundary
So "all wallets + isolated margins + insurance fund + fee income + bad debt + external flows = 0"
holds after every event.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum

from crossmargin.batch.screen import LiquidationScreen
from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import MarginMode, Position, PositionMode, Side
from crossmargin.core.venues import VenueRules

BOTH = "both"  # the position slot of one-way mode


class Reason(Enum):
    """Rejection reason codes (stable API: clients match on them)."""

    INVALID_COMMAND = "INVALID_COMMAND"
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    WITHDRAWAL_WOULD_LIQUIDATE = "WITHDRAWAL_WOULD_LIQUIDATE"
    NO_POSITION = "NO_POSITION"
    NOT_ISOLATED = "NOT_ISOLATED"
    ISOLATED_BELOW_INITIAL_MARGIN = "ISOLATED_BELOW_INITIAL_MARGIN"
    LEVERAGE_ABOVE_MAX = "LEVERAGE_ABOVE_MAX"
    MARGIN_MODE_UNCHANGED = "MARGIN_MODE_UNCHANGED"
    MARGIN_MODE_SWITCH_WITH_OPEN_POSITION = "MARGIN_MODE_SWITCH_WITH_OPEN_POSITION"
    MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS = "MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS"
    POSITION_MODE_UNCHANGED = "POSITION_MODE_UNCHANGED"
    POSITION_MODE_UNSUPPORTED = "POSITION_MODE_UNSUPPORTED"
    POSITION_MODE_SWITCH_WITH_OPEN_POSITION = "POSITION_MODE_SWITCH_WITH_OPEN_POSITION"
    POSITION_MODE_SWITCH_WITH_OPEN_ORDERS = "POSITION_MODE_SWITCH_WITH_OPEN_ORDERS"
    REDUCE_ONLY_WOULD_INCREASE = "REDUCE_ONLY_WOULD_INCREASE"
    POSITION_SIDE_MISMATCH = "POSITION_SIDE_MISMATCH"
    NO_MARK_PRICE = "NO_MARK_PRICE"
    FILL_EXCEEDS_ORDER = "FILL_EXCEEDS_ORDER"
    EXTERNAL_MATCHING_ONLY = "EXTERNAL_MATCHING_ONLY"
    FILL_PRICE_BEYOND_LIMIT = "FILL_PRICE_BEYOND_LIMIT"


class OrderType(Enum):
    MARKET = "market"
    LIMIT = "limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    order_id: str
    account: str
    symbol: str
    side: Side  # buy = LONG, sell = SHORT
    position_side: str  # BOTH, "long" or "short" (hedge mode)
    order_type: OrderType
    quantity: Decimal  # remaining
    price: Decimal | None  # limit price
    reduce_only: bool
    reserved: Decimal  # margin reserved while open (IM + open loss)


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    account_id: str
    wallet: Decimal = ZERO
    position_mode: PositionMode = PositionMode.ONE_WAY
    leverage: dict[str, Decimal] = field(default_factory=dict)
    margin_mode: dict[str, MarginMode] = field(default_factory=dict)
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    isolated: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # isolated margins
    orders: dict[str, Order] = field(default_factory=dict)
    margin_calls: frozenset[str] = frozenset()  # scopes currently above the threshold

    def leverage_for(self, symbol: str) -> Decimal:
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    def mode_for(self, symbol: str) -> MarginMode:
        return self.margin_mode.get(symbol, MarginMode.CROSS)

    def reserved(self) -> Decimal:
        return sum((order.reserved for order in self.orders.values()), ZERO)


DEFAULT_LEVERAGE = Decimal(20)


@dataclass(slots=True)
class Ledgers:
    """Balances of the non-account money ledgers."""

    insurance_fund: Decimal = ZERO
    fee_income: Decimal = ZERO
    bad_debt: Decimal = ZERO
    external: dict[str, Decimal] = field(default_factory=dict)


class MembershipIndex:
    """key -> set of account ids (e.g. symbol -> accounts holding it), mutated on commit only."""

    def __init__(self) -> None:
        self.sets: dict[str, set[str]] = {}

    def members(self, key: str) -> set[str] | frozenset[str]:
        return self.sets.get(key, frozenset())

    def add(self, key: str, member: str) -> None:
        self.sets.setdefault(key, set()).add(member)

    def discard(self, key: str, member: str) -> None:
        members = self.sets.get(key)
        if members is not None:
            members.discard(member)


class MembershipDraft:
    """Additions and removals overlaid on a :class:`MembershipIndex` (O(1) per change)."""

    def __init__(self, base: MembershipIndex) -> None:
        self.base = base
        self.added: dict[str, set[str]] = {}
        self.removed: dict[str, set[str]] = {}

    def members(self, key: str) -> set[str] | frozenset[str]:
        added, removed = self.added.get(key), self.removed.get(key)
        base = self.base.members(key)
        if not added and not removed:
            return base
        return (set(base) - (removed or set())) | (added or set())

    def add(self, key: str, member: str) -> None:
        self.added.setdefault(key, set()).add(member)
        self.removed.get(key, set()).discard(member)

    def discard(self, key: str, member: str) -> None:
        self.removed.setdefault(key, set()).add(member)
        self.added.get(key, set()).discard(member)

    def commit(self) -> None:
        for key, members in self.removed.items():
            for member in members:
                self.base.discard(key, member)
        for key, members in self.added.items():
            for member in members:
                self.base.add(key, member)


CALLED = "margin-called"  # key of the index of accounts with an open margin call


def resting_key(symbol: str) -> str:
    """Key of the index of accounts with open orders on ``symbol``."""
    return f"orders:{symbol}"


class EngineState:
    """The live projection. Mutated only by ``evolve`` (through a committed :class:`Draft`)."""

    def __init__(self, rules: VenueRules, instruments: dict[str, Instrument]) -> None:
        self.rules = rules
        self.instruments = instruments
        self.accounts: MutableMapping[str, Account] = {}
        self.marks: MutableMapping[str, Decimal] = {}
        self.ledgers = Ledgers()
        # symbol -> accounts with a position; CALLED -> accounts with an open margin call;
        # resting_key(symbol) -> accounts with an open order on the symbol
        self.holders = MembershipIndex()
        self.sequence = 0  # events applied
        self.screen: LiquidationScreen | None = None  # float pre-screen, kept by the writer
        self.screen_dirty: set[str] = set()  # accounts changed since the screen last saw them

    def draft(self) -> Draft:
        return Draft(self)


class Draft:
    """Changes being decided, overlaid on a state; ``commit`` merges them, dropping discards."""

    def __init__(self, base: EngineState) -> None:
        self.base = base
        self.rules = base.rules
        self.instruments = base.instruments
        self.accounts: MutableMapping[str, Account] = ChainMap({}, base.accounts)
        self.marks: MutableMapping[str, Decimal] = ChainMap({}, base.marks)
        self.holders = MembershipDraft(base.holders)
        self.ledgers = Ledgers(
            insurance_fund=base.ledgers.insurance_fund,
            fee_income=base.ledgers.fee_income,
            bad_debt=base.ledgers.bad_debt,
            external=dict(base.ledgers.external),
        )
        self.sequence = base.sequence

    def commit(self) -> None:
        base = self.base
        for mine, theirs in ((self.accounts, base.accounts), (self.marks, base.marks)):
            if isinstance(mine, ChainMap):
                theirs.update(mine.maps[0])
        self.holders.commit()
        base.ledgers = self.ledgers
        base.sequence = self.sequence
