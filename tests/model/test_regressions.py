"""The review's findings, pinned as explicit command sequences through the engine-vs-model harness.

Each case runs its commands through tests/model/harness.py (engine and reference model side by
side, every check after every command), so it fails if the engine departs from the model
anywhere; and it asserts the finding's own point on the model's outcome, with the figures worked
out by hand in the comments (which also checks the model against the specification).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.model.harness import Harness
from tests.model.reference import Outcome

D = Decimal


class Script:
    """Commands with fresh command ids, through one harness."""

    def __init__(self, matching: str = "simulated") -> None:
        self.harness = Harness(matching=matching)
        self.count = 0

    def __call__(self, kind: str, **fields: Any) -> Outcome:
        self.count += 1
        return self.harness.run({"type": kind, "command_id": f"r{self.count}", **fields})

    def account(self, name: str, amount: str, **settings: str) -> None:
        self("open_account", account=name)
        self("deposit", account=name, amount=amount)
        if settings.get("hedge"):
            self("set_position_mode", account=name, position_mode="hedge")
        for symbol in settings.get("isolated", "").split(","):
            if symbol:
                self("set_margin_mode", account=name, symbol=symbol, margin_mode="isolated")
        for symbol, leverage in (
            s.split("@") for s in settings.get("leverage", "").split(",") if s
        ):
            self("set_leverage", account=name, symbol=symbol, leverage=leverage)

    def market(
        self, account: str, order_id: str, symbol: str, side: str, qty: str, **extra: Any
    ) -> Outcome:
        return self(
            "place_order",
            account=account,
            order_id=order_id,
            symbol=symbol,
            side=side,
            order_type="market",
            quantity=qty,
            **extra,
        )

    def limit(
        self,
        account: str,
        order_id: str,
        symbol: str,
        side: str,
        qty: str,
        price: str,
        **extra: Any,
    ) -> Outcome:
        return self(
            "place_order",
            account=account,
            order_id=order_id,
            symbol=symbol,
            side=side,
            order_type="limit",
            quantity=qty,
            price=price,
            **extra,
        )

    @property
    def state(self) -> Any:
        return self.harness.model.state


def kinds(outcome: Outcome, kind: str) -> list[dict[str, Any]]:
    return [e for e in outcome.events if e["type"] == kind]


def test_a_bankrupt_cross_account_ends_at_exactly_zero_and_the_fund_covers_the_gap() -> None:
    s = Script()
    s("seed_insurance_fund", amount="10000")
    s.account("ann", "1000", leverage="BTCUSDT@50")
    s("update_mark", symbol="BTCUSDT", price="60000")
    # cost up(0.8*60000/50 + 0.8*60000*0.0005) = 960 + 24 <= 1000; W = 1000 - 24 = 976
    s.market("ann", "o1", "BTCUSDT", "buy", "0.8")
    # at 58000: MB = 976 - 1600 = -624 < 0: bankrupt; BP = 58000 + 624/0.8 = 58780
    crash = s("update_mark", symbol="BTCUSDT", price="58000")
    (bankrupt,) = kinds(crash, "ScopeBankrupt")
    assert bankrupt["deficit"] == D(624) and bankrupt["prices"] == {"BTCUSDT:both": D(58780)}
    # the fund takes the whole position over at 58780 and pays 624 (58780 vs 58000 on 0.8)
    assert [e.get("taken_over_by") for e in kinds(crash, "PositionLiquidated")] == [
        "insurance_fund"
    ]
    account = s.state.accounts["ann"]
    assert account.wallet == 0 and not account.positions
    assert s.state.fund == D(10000 - 624) and s.state.bad_debt == 0


def test_an_isolated_bankruptcy_is_settled_in_its_slot_and_the_next_position_starts_clean() -> None:
    s = Script()
    s.account("ben", "2000", isolated="BTCUSDT", leverage="BTCUSDT@50")
    s("update_mark", symbol="BTCUSDT", price="60000")
    # M = 0.5*60000/50 = 600; W = 2000 - 600 - fee 15 = 1385
    s.market("ben", "o1", "BTCUSDT", "buy", "0.5")
    crash = s("update_mark", symbol="BTCUSDT", price="57000")  # MB = 600 - 1500 = -900
    assert [e["scope"] for e in kinds(crash, "ScopeBankrupt")] == ["isolated:BTCUSDT:both"]
    (debt,) = kinds(crash, "BadDebtRecorded")  # empty fund, no counterparty
    assert debt["amount"] == D(900)
    account = s.state.accounts["ben"]
    assert account.wallet == D(1385) and account.margin(("BTCUSDT", "both")) == 0
    assert s.state.bad_debt == D(-900)
    # the next position's margin is its own 0.1*57000/50 = 114, not 114 - 900
    s.market("ben", "o2", "BTCUSDT", "buy", "0.1")
    assert s.state.accounts["ben"].margin(("BTCUSDT", "both")) == D(114)


def test_adl_trades_the_bankrupt_symbol_at_its_bankruptcy_price_between_mark_and_entry() -> None:
    s = Script()
    s.account("ann", "2600", leverage="BTCUSDT@50,ETHUSDT@50")
    s.account("bob", "20000")
    s.account("cat", "20000")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s("update_mark", symbol="ETHUSDT", price="3000")
    s.market("ann", "a1", "BTCUSDT", "buy", "0.5")  # 600 IM + 15 fee
    s.market("ann", "a2", "ETHUSDT", "buy", "20")  # 1200 IM + 30 fee; W = 2555
    s.market("bob", "b1", "BTCUSDT", "sell", "1")
    s.market("cat", "c1", "ETHUSDT", "sell", "10")
    crash = s("update_mark", symbol="BTCUSDT", price="54000")
    # MB = 2555 - 3000 + 0 = -445: the BTC loss carries the whole deficit and the larger ETH
    # position (UPNL 0) none, so only BTC is deleveraged, at 54000 + 445/0.5 = 54890
    (bankrupt,) = kinds(crash, "ScopeBankrupt")
    assert bankrupt["prices"] == {"BTCUSDT:both": D(54890), "ETHUSDT:both": D(3000)}
    adl = kinds(crash, "PositionAutoDeleveraged")
    assert [(e["account"], e["symbol"], e["price"]) for e in adl] == [("bob", "BTCUSDT", D(54890))]
    assert 54000 <= adl[0]["price"] <= 60000
    assert s.state.accounts["ann"].wallet == 0 and not s.state.accounts["ann"].positions
    assert s.state.accounts["cat"].positions[("ETHUSDT", "both")].qty == 10  # no ETH ADL


def test_isolated_close_fees_come_from_the_slot_and_opening_fees_from_the_wallet() -> None:
    s = Script()
    s.account("ben", "1000", isolated="BTCUSDT")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s.market("ben", "o1", "BTCUSDT", "buy", "0.1")  # M = 300, W = 1000 - 300 - 3 = 697
    s("update_mark", symbol="BTCUSDT", price="61000")
    # reduce 0.05: realized 50, close fee 1.525 from the slot; share 150 + 50 - 1.525 released
    s.market("ben", "o2", "BTCUSDT", "sell", "0.05")
    account = s.state.accounts["ben"]
    assert (account.wallet, account.margin(("BTCUSDT", "both"))) == (D("895.475"), D(150))
    # flip with 0.15: the close releases 150 + 50 - 1.525; the new 0.1 short takes 305 and
    # pays its 3.05 opening fee from the wallet
    s.market("ben", "o3", "BTCUSDT", "sell", "0.15")
    assert (account.wallet, account.margin(("BTCUSDT", "both"))) == (D("785.9"), D(305))
    assert s.state.fee_income == D("9.1")


def test_a_leverage_change_re_reserves_resting_orders_and_is_refused_when_they_no_longer_fit() -> (
    None
):
    s = Script()
    s.account("ann", "400")
    s("update_mark", symbol="BTCUSDT", price="60000")
    # rests, reserving 5000 / 20 = 250 and the fee to open, 5000 x 0.0005 = 2.5
    s.limit("ann", "o1", "BTCUSDT", "buy", "0.1", "50000")
    assert s.state.accounts["ann"].orders["o1"].reserved == D("252.5")
    s("set_leverage", account="ann", symbol="BTCUSDT", leverage="50")
    assert s.state.accounts["ann"].orders["o1"].reserved == D("102.5")
    refused = s("set_leverage", account="ann", symbol="BTCUSDT", leverage="10")  # 502.5 > 400
    assert refused.reason == "INSUFFICIENT_MARGIN"
    assert s.state.accounts["ann"].orders["o1"].reserved == D("102.5")


def test_an_external_fill_beyond_the_limit_price_is_refused() -> None:
    s = Script("external")
    s.account("ann", "5000")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s.limit("ann", "o1", "BTCUSDT", "buy", "0.1", "59000")
    assert (
        s("report_fill", account="ann", order_id="o1", quantity="0.1", price="59000.1").reason
        == "FILL_PRICE_BEYOND_LIMIT"
    )
    assert s("report_fill", account="ann", order_id="o1", quantity="0.04", price="58000").accepted
    # 0.06 left of 0.1, reserving (295 + the fee to open 2.95) x 0.6
    order = s.state.accounts["ann"].orders["o1"]
    assert (order.qty, order.reserved) == (D("0.06"), D("178.77"))


def test_order_ids_are_unique_per_account_only() -> None:
    s = Script()
    s.account("ann", "5000")
    s.account("bob", "5000")
    s("update_mark", symbol="BTCUSDT", price="60000")
    assert s.limit("ann", "o1", "BTCUSDT", "buy", "0.01", "59000").accepted
    assert s.limit("bob", "o1", "BTCUSDT", "sell", "0.01", "61000").accepted
    assert s.limit("ann", "o1", "BTCUSDT", "buy", "0.01", "58000").reason == "DUPLICATE_ORDER_ID"
    s("cancel_order", account="ann", order_id="o1")
    assert "o1" in s.state.accounts["bob"].orders


@pytest.mark.parametrize("fund", ["0", "100000"])
def test_partial_liquidation_cuts_to_the_lower_bracket_and_keeps_the_margin_in_the_scope(
    fund: str,
) -> None:
    s = Script()
    if fund != "0":
        s("seed_insurance_fund", amount=fund)
    s.account("eve", "100000")
    s("update_mark", symbol="DOGEUSDT", price="0.1")
    s.market("eve", "o1", "DOGEUSDT", "buy", "10000000")  # 1,000,000 notional: bracket 5 (2.5%)
    # at 0.09116: MB = 99500 - 88400 = 11100 <= MM 911600*2.5% - 11670 = 11120; cutting to the
    # 800,000 cap costs a 1395 fee and leaves MB 9705 > MM 8330: a cut, not a close
    tick = s("update_mark", symbol="DOGEUSDT", price="0.09116")
    (cut,) = kinds(tick, "PositionLiquidated")
    assert cut["partial"] is True
    assert s.state.accounts["eve"].positions[("DOGEUSDT", "both")].qty * D("0.09116") <= 800000


def test_command_ids_are_unique_per_principal() -> None:
    s = Script()
    s.account("ann", "100")
    command = {"type": "deposit", "command_id": "same", "account": "ann", "amount": "10"}
    s.harness.run(dict(command), "operator")
    s.harness.run(dict(command), "account:ann")  # another principal: another command
    assert s.state.accounts["ann"].wallet == D(120)
    again = s.harness.engine.execute(dict(command), "account:ann")
    assert again["duplicate"] is True
    assert s.harness.engine_view.accounts["ann"].wallet == D(120)


def test_a_bankrupt_hedge_cross_scope_gives_each_slot_its_own_bankruptcy_price() -> None:
    s = Script()
    s.account("cat", "1000", hedge="1", leverage="BTCUSDT@50")
    s.account("bob", "20000")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s.market("cat", "l1", "BTCUSDT", "buy", "0.5", position_side="long")  # 600 + 15
    s.market("cat", "s1", "BTCUSDT", "sell", "0.2", position_side="short")  # 240 + 6: W = 979
    s.market("bob", "b1", "BTCUSDT", "sell", "1")
    crash = s("update_mark", symbol="BTCUSDT", price="56000")
    # MB = 979 - 2000 + 800 = -221: the long carries the deficit (BP 56000 + 221/0.5 = 56442),
    # the winning short none (BP = mark); bob's short is deleveraged at 56442 against the long
    (bankrupt,) = kinds(crash, "ScopeBankrupt")
    assert bankrupt["prices"] == {"BTCUSDT:long": D(56442), "BTCUSDT:short": D(56000)}
    adl = kinds(crash, "PositionAutoDeleveraged")
    assert [(e["account"], e["quantity"], e["price"]) for e in adl] == [("bob", D("0.5"), D(56442))]
    assert s.state.accounts["cat"].wallet == 0 and not s.state.accounts["cat"].positions


def test_margin_calls_are_issued_at_80_percent_and_cleared_below() -> None:
    s = Script()
    s.account("ann", "1000", leverage="BTCUSDT@50")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s.market("ann", "o1", "BTCUSDT", "buy", "0.8")  # W = 976
    # at 59060: MB = 976 - 752 = 224, MM = 188.992: ratio 0.8437 >= 0.8
    assert [
        e["scope"]
        for e in kinds(s("update_mark", symbol="BTCUSDT", price="59060"), "MarginCallIssued")
    ] == ["cross"]
    assert s.state.accounts["ann"].calls == {"cross"}
    # a deposit of 100: MB 324, ratio 0.5833: cleared by the deposit's own examination
    assert kinds(s("deposit", account="ann", amount="100"), "MarginCallCleared")
    assert s.state.accounts["ann"].calls == set()


def test_funding_moves_wallet_and_isolated_margin_rounded_in_the_venues_favour() -> None:
    s = Script()
    s.account("ann", "1000")
    s.account("ben", "1000", isolated="ETHUSDT")
    s("update_mark", symbol="ETHUSDT", price="3000")
    s.market("ann", "a1", "ETHUSDT", "buy", "0.333")  # W = 1000 - 0.49950
    s.market("ben", "b1", "ETHUSDT", "sell", "0.333")  # M = 49.95
    s("settle_funding", symbol="ETHUSDT", rate="0.000123456789")
    # owed = 0.333 * 3000 * 0.000123456789 = 0.123333332211: the long pays 0.12333334, the short
    # receives 0.12333333; the venue keeps the 1e-8
    assert s.state.accounts["ann"].wallet == D("1000") - D("0.4995") - D("0.12333334")
    assert s.state.accounts["ben"].margin(("ETHUSDT", "both")) == D("49.95") + D("0.12333333")
    assert s.state.external["funding"] == D("0.00000001")


def test_a_withdrawal_within_free_margin_is_refused_when_it_would_liquidate() -> None:
    s = Script()
    s.account("cat", "200000", hedge="1", leverage="DOGEUSDT@40")
    s("update_mark", symbol="DOGEUSDT", price="0.1")
    s.market("cat", "l", "DOGEUSDT", "buy", "7000000", position_side="long")  # 700,000 at 40x
    s.market("cat", "s", "DOGEUSDT", "sell", "7000000", position_side="short")  # W = 199300
    s("update_mark", symbol="DOGEUSDT", price="0.3")
    # the two legs' PnL cancel; each is now 2.1M notional, bracket 6 (5%, cum 51670): MM 53330
    # each exceeds its IM 2.1M/40 = 52500, so free margin 199300 - 105000 = 94300 can be
    # withdrawn only at the price of MB 105000 <= MM 106660
    assert s("withdraw", account="cat", amount="94300").reason == "WITHDRAWAL_WOULD_LIQUIDATE"
    assert s("withdraw", account="cat", amount="92000").accepted  # MB 107300 > 106660


def test_an_isolated_flip_past_bankruptcy_settles_the_slot_before_the_new_position_opens() -> None:
    s = Script("external")
    s("seed_insurance_fund", amount="50")
    s.account("ben", "1000", isolated="BTCUSDT", leverage="BTCUSDT@100")
    s.account("bob", "10000")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s.market("ben", "o1", "BTCUSDT", "buy", "0.1")
    s("report_fill", account="ben", order_id="o1", quantity="0.1", price="60000")  # M = 60
    s.market("bob", "b1", "BTCUSDT", "buy", "1")
    s("report_fill", account="bob", order_id="b1", quantity="1", price="60000")
    s.market("ben", "o2", "BTCUSDT", "sell", "0.2")
    # the venue reports the flip at 59000 (mark 60000): closing the long leaves
    # 60 - 100 - 2.95 = -42.95 in the slot, which the fund covers at once; the short then opens
    # with its own 59 of margin, is bankrupt at the mark (MB 59 - 100 = -41, BP 59590), the fund
    # takes over what its 7.05 pays (0.01719512) and bob is deleveraged for the rest at 59590.
    # (Leaving -42.95 under the new position instead would give one deficit of 83.95, BP 59160.5.)
    flip = s("report_fill", account="ben", order_id="o2", quantity="0.2", price="59000")
    assert [e["amount"] for e in kinds(flip, "InsuranceFundPaid")][:1] == [D("42.95")]
    adl = kinds(flip, "PositionAutoDeleveraged")
    assert [(e["account"], e["quantity"], e["price"]) for e in adl] == [
        ("bob", D("0.08280488"), D(59590))
    ]
    assert s.state.accounts["ben"].margin(("BTCUSDT", "both")) == 0


# -- found by the machine after the engine's rewrite ---------------------------------------------


def test_the_fund_takes_the_whole_position_when_it_can_pay_exactly_its_share() -> None:
    s = Script()
    s("seed_insurance_fund", amount="800")
    s.account("ann", "1230", leverage="BTCUSDT@50")
    s.account("bob", "20000")
    s("update_mark", symbol="BTCUSDT", price="60000")
    s.market("ann", "a1", "BTCUSDT", "buy", "1")  # W = 1230 - 30 = 1200
    s.market("bob", "b1", "BTCUSDT", "sell", "1")
    crash = s("update_mark", symbol="BTCUSDT", price="58000")
    # MB = -800, BP = 58800, gap 800: the fund's share of the whole position is exactly its 800,
    # so it takes all of it; nobody is deleveraged and the fund ends at 0
    taken = [e["quantity"] for e in kinds(crash, "PositionLiquidated") if e.get("taken_over_by")]
    assert taken == [D("1")]
    assert kinds(crash, "PositionAutoDeleveraged") == []
    assert s.state.accounts["bob"].positions[("BTCUSDT", "both")].qty == D("1")
    assert s.state.fund == 0 and s.state.accounts["ann"].wallet == 0


def test_a_hedge_close_clipped_at_its_fill_cancels_its_remainder() -> None:
    s = Script()
    s.account("cat", "1000", hedge="1", leverage="BTCUSDT@25")
    s("update_mark", symbol="BTCUSDT", price="67392")
    s.market("cat", "o12", "BTCUSDT", "buy", "0.366", position_side="long")
    s.limit(
        "cat", "o13", "BTCUSDT", "sell", "0.325", "74238.9", position_side="long", reduce_only=True
    )
    s.limit("cat", "o14", "BTCUSDT", "sell", "0.344", "74238.9", position_side="long")
    # both close the long; o13 fills first (0.325), o14 only has 0.041 left to close: it fills
    # that much and its remainder is cancelled (a hedge-mode close never opens, like reduce-only)
    tick = s("update_mark", symbol="BTCUSDT", price="81517.2")
    assert [e["quantity"] for e in kinds(tick, "OrderFilled")] == [D("0.325"), D("0.041")]
    assert s.state.accounts["cat"].orders == {}
    assert not s.state.accounts["cat"].positions


def test_a_resting_market_order_is_re_reserved_on_a_leverage_change() -> None:
    s = Script("external")
    s.account("fay", "2000")
    s("update_mark", symbol="DOGEUSDT", price="0.11472")
    # rests: 43046 x 0.11472 / 20 = 246.911856 plus the fee to open, 2.46911856
    s.market("fay", "o1", "DOGEUSDT", "buy", "43046")
    assert s.state.accounts["fay"].orders["o1"].reserved == D("249.38097456")
    s("set_leverage", account="fay", symbol="DOGEUSDT", leverage="50")  # at the mark: / 50
    assert s.state.accounts["fay"].orders["o1"].reserved == D("101.23386096")
