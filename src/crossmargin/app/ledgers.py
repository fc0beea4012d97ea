"""Money ledgers as values (their text forms are what the log stores).

Ledgers (per settle asset; the engine runs one settle asset). Every balance change is a
posting pair summing to zero:

  wallet:<account>                         cross wallet
  isolated:<account>:<symbol>:<slot>       an isolated position's margin
  insurance_fund, fee_income
  bad_debt                                 the venue's unrecovered losses (only ever negative)
  external:<flow>                          money crossing the engine's boundary: deposits,
                                           trading (the market's side of fills), funding,
                                           insurance (fund seeding)

So "all wallets + isolated margins + insurance fund + fee income + bad debt + external flows
= 0" holds after every event. Account ids, symbols and slots never contain ``:`` (core.ids), so
the text forms parse back unambiguously.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from crossmargin.core.errors import InvariantViolation
from crossmargin.core.scope import ScopeId


class LedgerKind(Enum):
    WALLET = "wallet"
    ISOLATED = "isolated"
    INSURANCE_FUND = "insurance_fund"
    FEE_INCOME = "fee_income"
    BAD_DEBT = "bad_debt"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True, order=True)
class Ledger:
    """One money ledger: an account's wallet or isolated slot, a venue ledger, an external flow."""

    kind: LedgerKind
    account: str = ""
    symbol: str = ""
    slot: str = ""
    flow: str = ""  # external flows only

    @staticmethod
    def wallet(account: str) -> Ledger:
        return Ledger(LedgerKind.WALLET, account=account)

    @staticmethod
    def isolated(account: str, symbol: str, slot: str) -> Ledger:
        return Ledger(LedgerKind.ISOLATED, account=account, symbol=symbol, slot=slot)

    @staticmethod
    def external(flow: str) -> Ledger:
        return Ledger(LedgerKind.EXTERNAL, flow=flow)

    @staticmethod
    def parse(text: str) -> Ledger:
        kind, _, rest = text.partition(":")
        try:
            ledger_kind = LedgerKind(kind)
        except ValueError:
            raise InvariantViolation(f"unknown ledger {text!r}") from None
        parts = rest.split(":") if rest else []
        if ledger_kind is LedgerKind.WALLET and len(parts) == 1:
            return Ledger.wallet(parts[0])
        if ledger_kind is LedgerKind.ISOLATED and len(parts) == 3:
            return Ledger.isolated(*parts)
        if ledger_kind is LedgerKind.EXTERNAL and len(parts) == 1:
            return Ledger.external(parts[0])
        if not parts and ledger_kind in _VENUE:
            return Ledger(ledger_kind)
        raise InvariantViolation(f"malformed ledger {text!r}")

    @staticmethod
    def collateral(account: str, scope: ScopeId) -> Ledger:
        """The ledger holding a scope's collateral: the wallet, or the isolated slot."""
        if scope.is_cross:
            return Ledger.wallet(account)
        return Ledger.isolated(account, scope.symbol, scope.slot)

    def __str__(self) -> str:
        if self.kind is LedgerKind.WALLET:
            return f"wallet:{self.account}"
        if self.kind is LedgerKind.ISOLATED:
            return f"isolated:{self.account}:{self.symbol}:{self.slot}"
        if self.kind is LedgerKind.EXTERNAL:
            return f"external:{self.flow}"
        return str(self.kind.value)


_VENUE = (LedgerKind.INSURANCE_FUND, LedgerKind.FEE_INCOME, LedgerKind.BAD_DEBT)
INSURANCE_FUND = Ledger(LedgerKind.INSURANCE_FUND)
FEE_INCOME = Ledger(LedgerKind.FEE_INCOME)
BAD_DEBT = Ledger(LedgerKind.BAD_DEBT)
TRADING = Ledger.external("trading")
DEPOSITS = Ledger.external("deposits")
FUNDING = Ledger.external("funding")
INSURANCE_SEEDING = Ledger.external("insurance")


@dataclass(frozen=True, slots=True)
class Posting:
    ledger: Ledger
    amount: Decimal


def postings(*pairs: tuple[Ledger, Decimal]) -> tuple[Posting, ...]:
    """Postings for ``(ledger, amount)`` pairs, leaving out a group whose amounts are all zero."""
    if all(amount == 0 for _, amount in pairs):
        return ()
    return tuple(Posting(ledger, amount) for ledger, amount in pairs)
