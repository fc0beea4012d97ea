"""Decimal arithmetic, parsing and the two named rounding decisions.

Money and prices are ``Decimal`` everywhere on the authoritative path; floats never enter.
Multiplication and addition of the inputs are exact at Python's default decimal precision (28 significant digits, ample for
notionals up to 10^12 at 10^-8 resolution); the
only inexact operations are divisions, and every division result is rounded by a named helper
whose direction favours the venue:

* ``round_requirement`` rounds a margin requirement (IM, MM, a fee owed) *up* to ``MONEY_QUANTUM``.
* ``round_balance_delta`` rounds an amount credited to a trader *down* to ``MONEY_QUANTUM``.
* ``round_ratio`` rounds a risk ratio (maintenance / margin balance) *up* to ``RATIO_QUANTUM``.
* ``round_trigger_price`` rounds a liquidation price towards the current mark (a long's
  liquidation price up, a short's down) to ``PRICE_QUANTUM``, so the reported level is reached no
  later than the exact one.
"""

from __future__ import annotations

import decimal
import re
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal

from crossmargin.core.errors import InvalidInput

ZERO = Decimal(0)
ONE = Decimal(1)
MONEY_QUANTUM = Decimal("1e-8")
PRICE_QUANTUM = Decimal("1e-8")
RATIO_QUANTUM = Decimal("1e-8")
RATE_QUANTUM = Decimal("1e-12")
# The magnitudes an input number may have (or be zero): beyond any real price, size, leverage, rate
# or balance (Binance writes an unbounded cap as 2^63 - 1, about 9.2e18), and far enough inside the
# decimal exponent limits that products and quotients of inputs (1 / leverage) never overflow.
MAX_INPUT_MAGNITUDE = Decimal("1e20")
MIN_INPUT_MAGNITUDE = Decimal("1e-18")
# What one engine command may carry: an amount, quantity or price of at most 10^12 on the 1e-8
# quantum (20 significant digits, so sums of them stay exact at 28), leverage 1 to 1000 in steps
# of 0.01. The calculator's wider range above applies to what-if portfolios, not to commands.
MAX_COMMAND_AMOUNT = Decimal(10) ** 12
MAX_LEVERAGE = Decimal(1000)
LEVERAGE_STEP = Decimal("0.01")
# A number written as text: ASCII digits only (Decimal() would also take "1_000" and full-width
# digits, which no client means as a number).
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# Quantizing needs as many digits as the result has; at the default 28 a finite but extreme value
# (a margin ratio over a margin balance of 1e-30) would raise InvalidOperation instead of rounding.
_ROUNDING_CONTEXT = decimal.Context(prec=decimal.MAX_PREC)


def round_requirement(amount: Decimal) -> Decimal:
    """A requirement owed to the venue (margin, fee): round up, away from zero."""
    return amount.quantize(MONEY_QUANTUM, rounding=ROUND_CEILING, context=_ROUNDING_CONTEXT)


def round_balance_delta(amount: Decimal) -> Decimal:
    """An amount paid to the trader: round towards minus infinity (the venue keeps the dust)."""
    return amount.quantize(MONEY_QUANTUM, rounding=ROUND_FLOOR, context=_ROUNDING_CONTEXT)


def round_ratio(ratio: Decimal) -> Decimal:
    """A risk ratio shown to the trader: round up, so risk is never understated."""
    return ratio.quantize(RATIO_QUANTUM, rounding=ROUND_UP, context=_ROUNDING_CONTEXT)


def round_rate(rate: Decimal) -> Decimal:
    """A derived margin rate (e.g. 1/(2 x max leverage)): round up."""
    return rate.quantize(RATE_QUANTUM, rounding=ROUND_UP, context=_ROUNDING_CONTEXT)


def round_trigger_price(price: Decimal, mark: Decimal) -> Decimal:
    """A liquidation price: round towards the mark, so it triggers no later than the exact one."""
    if price < mark:
        return price.quantize(PRICE_QUANTUM, rounding=ROUND_CEILING, context=_ROUNDING_CONTEXT)
    return price.quantize(PRICE_QUANTUM, rounding=ROUND_DOWN, context=_ROUNDING_CONTEXT)


def parse_decimal(value: object, field: str) -> Decimal:
    """Read a JSON number or numeric string as a finite Decimal; name ``field`` on failure.

    Floats are refused outright: JSON must be decoded with ``parse_float=Decimal`` so that a
    number never passes through binary floating point.
    """
    result = _finite_decimal(value, field)
    if result.copy_abs() > MAX_INPUT_MAGNITUDE:
        raise InvalidInput(field, "out of range: more than 10^20 in size")
    if result and result.copy_abs() < MIN_INPUT_MAGNITUDE:
        raise InvalidInput(field, "out of range: not zero but less than 10^-18 in size")
    return result


def _finite_decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidInput(field, f"expected a number, got {str(value).lower()}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        word = text.lower().lstrip("+-")
        if word in ("inf", "infinity"):
            raise InvalidInput(field, "must be finite")
        if word in ("nan", "snan"):
            raise InvalidInput(field, "NaN is not a number")
        if _NUMBER_TEXT.fullmatch(text) is None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise InvalidInput(field, f"not a number: {shown!a}")
        result = Decimal(text)
    elif isinstance(value, float):
        raise InvalidInput(field, "binary floats are not accepted; pass a string or a JSON number")
    elif value is None:
        raise InvalidInput(field, "is required")
    else:
        raise InvalidInput(field, f"expected a number, got {type(value).__name__}")
    if result.is_nan():
        raise InvalidInput(field, "NaN is not a number")
    if result.is_infinite():
        raise InvalidInput(field, "must be finite")
    return result


def parse_positive(value: object, field: str) -> Decimal:
    """A finite Decimal that must be strictly positive."""
    result = parse_decimal(value, field)
    if result <= 0:
        raise InvalidInput(field, f"must be positive, got {brief(result)}")
    return result


def parse_non_negative(value: object, field: str) -> Decimal:
    """A finite Decimal that must be zero or more."""
    result = parse_decimal(value, field)
    if result < 0:
        raise InvalidInput(field, f"must not be negative, got {brief(result)}")
    return result


def parse_command_amount(value: object, field: str, *, quantum: Decimal = MONEY_QUANTUM) -> Decimal:
    """An engine command's amount, quantity or price: positive, at most ``MAX_COMMAND_AMOUNT``,
    a multiple of ``quantum``."""
    result = _finite_decimal(value, field)
    if result <= 0:
        raise InvalidInput(field, f"must be positive, got {brief(result)}")
    if result > MAX_COMMAND_AMOUNT:
        raise InvalidInput(field, f"at most {MAX_COMMAND_AMOUNT:,f} is allowed")
    if result != result.quantize(quantum, context=_ROUNDING_CONTEXT):
        raise InvalidInput(field, f"must be a multiple of {quantum:f}")
    return result


def parse_leverage(value: object, field: str) -> Decimal:
    """A leverage: 1 to ``MAX_LEVERAGE`` in steps of ``LEVERAGE_STEP``."""
    result = _finite_decimal(value, field)
    if not 1 <= result <= MAX_LEVERAGE:
        raise InvalidInput(field, f"must be between 1 and {MAX_LEVERAGE}, got {brief(result)}")
    if result != result.quantize(LEVERAGE_STEP):
        raise InvalidInput(field, f"must be a multiple of {LEVERAGE_STEP}")
    return result


def brief(value: Decimal) -> str:
    """``value`` for an error message: plain when short, else in scientific notation."""
    text = format_decimal(value) if -30 < value.adjusted() < 30 else f"{value:.6E}"
    return text if len(text) <= 40 else f"{value:.6E}"


def format_decimal(value: Decimal) -> str:
    """Full precision, no exponent, no trailing zeros: ``Decimal('71200.811450')`` -> ``71200.81145``."""
    if value == 0:
        return "0"
    # No normalize(): it rounds to the context precision. Strip zeros from the text instead.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
