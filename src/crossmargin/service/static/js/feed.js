// The live event feed (newest on top, never jumping under the reader) and the pinned alerts:
// liquidations, auto-deleveraging and margin calls stay in view however many events follow.
import { asset, el, learnSidesFromEvent, money, percent, price, scopeLabel, shortTime, signed } from "./format.js";

const MAX_SHOWN = 150; // feed items kept in the page
const MAX_ALERTS = 30; // alert groups kept (one group: one account's events of one log entry)
const ALERT_TYPES = new Set([
  "LiquidationTriggered", "ScopeBankrupt", "PositionLiquidated", "PositionAutoDeleveraged", "LiquidationFeeCharged",
  "BadDebtRecorded", "InsuranceFundPaid", "InsuranceFundCollected", "MarginCallIssued", "MarginCallCleared",
]);

const seen = new Set();
const alerts = []; // newest first: {key, account, seq, time, events: [event]}
const liquidations = {}; // account -> LiquidationTriggered count (not capped with the feed)
let unread = 0;

const held = (event) => (event.side === "long" ? "short" : "long"); // a forced close's side is the closing order's

function closing(e) {
  if (e.taken_over_by === "insurance_fund") return "Taken over by the insurance fund at the bankruptcy price:";
  if (e.liquidity === "adl") return "Auto-deleveraged at the bankruptcy price:";
  return e.partial ? "Partly liquidated" : "Liquidated";
}

const TEXT = {
  LiquidationTriggered: ["liquidation", (e, a) => `Liquidation triggered on ${scopeLabel(a, e.scope)}: margin balance ${money(e.margin_balance)} ≤ maintenance ${money(e.maintenance_margin)}`],
  ScopeBankrupt: ["liquidation", (e, a) => `Bankrupt (${scopeLabel(a, e.scope)}): deficit ${money(e.deficit)}; bankruptcy prices ` +
    Object.entries(e.prices || {}).map(([key, p]) => `${asset(key.split(":")[0])} ${price(p)}`).join(", ")],
  PositionLiquidated: ["liquidation", (e) => closing(e) + ` ${asset(e.symbol)} ${held(e)} ${e.quantity} at ${price(e.price)} (PnL ${signed(e.realized_pnl)})`],
  PositionAutoDeleveraged: ["liquidation", (e) => `Auto-deleveraged: your ${asset(e.symbol)} ${held(e)} ${e.quantity} closed at ${price(e.price)} against a bankrupt account (PnL ${signed(e.realized_pnl)})`],
  LiquidationFeeCharged: ["liquidation", (e, a) => `Liquidation fee ${money(e.amount)} from ${scopeLabel(a, e.scope)}`],
  BadDebtRecorded: ["liquidation", (e, a) => `Bad debt ${money(e.amount)} left on ${scopeLabel(a, e.scope)}`],
  InsuranceFundPaid: ["liquidation", (e, a) => `Insurance fund paid ${money(e.amount)} to ${scopeLabel(a, e.scope)}`],
  InsuranceFundCollected: ["liquidation", (e, a) => `Insurance fund collected ${money(e.amount)} of rounding dust from ${scopeLabel(a, e.scope)}`],
  MarginCallIssued: ["margin-call", (e, a) => `Margin call on ${scopeLabel(a, e.scope)}` + (e.margin_ratio ? `: margin ratio ${percent(e.margin_ratio)}` : ": no margin balance left")],
  MarginCallCleared: ["cleared", (e, a) => `Margin call cleared on ${scopeLabel(a, e.scope)}`],
  OrderFilled: ["fill", (e) => `Filled ${e.side} ${e.quantity} ${e.symbol} at ${price(e.price)}`],
  OrderAccepted: ["", (e) => { const o = e.order || e.accepted; return `Order ${o.order_id}: ${o.order_type} ${o.side} ${o.quantity} ${o.symbol}`; }],
  OrderCancelled: ["", (e) => `Order ${e.order_id} cancelled (${e.reason})`],
  FundsDeposited: ["", (e) => `Deposited ${money(e.amount)}`],
  FundsWithdrawn: ["", (e) => `Withdrew ${money(e.amount)}`],
  IsolatedMarginAdded: ["", (e) => `Added ${money(e.amount)} to ${asset(e.symbol)}, isolated`],
  IsolatedMarginRemoved: ["", (e) => `Removed ${money(e.amount)} from ${asset(e.symbol)}, isolated`],
  MarginModeChanged: ["", (e) => `${e.symbol} margin mode → ${e.margin_mode}`],
  LeverageChanged: ["", (e) => `${e.symbol} leverage → ${Number(e.leverage)}×`],
  PositionModeChanged: ["", (e) => `Position mode → ${e.position_mode}`],
  PositionLeverageChanged: ["", (e) => `${e.position.symbol} position leverage → ${Number(e.position.after ? e.position.after.leverage : 0)}×`],
  OrderRepriced: ["", (e) => `Order ${e.order.order_id} re-reserved at the new leverage`],
  FundingSettled: ["", (e) => `Funding on ${e.symbol} at rate ${e.rate}`],
  AccountOpened: ["", () => "Account opened"],
};

function describe(account, event) {
  const known = TEXT[event.type];
  if (!known) return ["", event.type];
  try { return [known[0], known[1](event, account)]; } catch (error) { return [known[0], event.type]; }
}

export const liquidationCount = (account) => liquidations[account] || 0;

// Add events from a stream; returns the new alert events (which marks cause: the caller dates
// live ones with clock.js). Other events are not dated: the mark time says nothing of when a
// deposit or an order happened.
export function addEvents(account, items) {
  const fresh = [];
  for (const item of items) {
    const id = account + "|" + item.seq + "|" + JSON.stringify(item.event);
    if (seen.has(id)) continue;
    seen.add(id);
    learnSidesFromEvent(account, item.event);
    const entry = { account, seq: item.seq, event: item.event, time: null };
    if (item.event.type === "LiquidationTriggered") liquidations[account] = liquidationCount(account) + 1;
    fresh.push(entry);
  }
  if (!fresh.length) return [];
  const alerting = fresh.filter((entry) => ALERT_TYPES.has(entry.event.type));
  insertItems(fresh);
  if (alerting.length) addAlerts(alerting);
  return alerting;
}

export function date(entry, time) {
  if (time === null || entry.time !== null) return;
  entry.time = time;
  for (const node of document.querySelectorAll(`[data-seq="${entry.seq}"][data-account="${CSS.escape(entry.account)}"] .when`)) {
    node.textContent = shortTime(time);
  }
  document.dispatchEvent(new CustomEvent("events-dated"));
}

// Keep what the reader looks at in place while `mutate` inserts above it (unless they are at
// the top, where newest-on-top is what they watch).
function keepAnchor(list, mutate) {
  if (list.scrollTop <= 0) { mutate(); return false; }
  const view = list.getBoundingClientRect();
  const anchor = [...list.children].find((node) => node.getBoundingClientRect().bottom > view.top);
  const before = anchor ? anchor.getBoundingClientRect().top : 0;
  mutate();
  if (anchor && anchor.isConnected) list.scrollTop += anchor.getBoundingClientRect().top - before;
  return true;
}

function itemNode(entry) {
  const [kind, text] = describe(entry.account, entry.event);
  return el("li", { class: kind, "data-type": entry.event.type, "data-account": entry.account, "data-seq": String(entry.seq) },
    el("div", { class: "meta" }, el("span", { class: "when", text: shortTime(entry.time) }),
      ` #${entry.seq} · ${entry.account} · ${entry.event.type}`),
    el("div", { class: kind ? "what" : "", text }));
}

function insertItems(entries) {
  const list = document.getElementById("events");
  entries.sort((a, b) => b.seq - a.seq);
  const below = keepAnchor(list, () => {
    for (const entry of entries) {
      const node = itemNode(entry);
      const after = [...list.children].find((li) => Number(li.dataset.seq) < entry.seq);
      list.insertBefore(node, after || null);
    }
    while (list.children.length > MAX_SHOWN) list.lastElementChild.remove();
  });
  if (below) {
    unread += entries.length;
    const button = document.getElementById("events-unread");
    button.textContent = `↑ ${unread} newer`;
    button.classList.remove("hidden");
  }
}

export function readNewest() {
  unread = 0;
  document.getElementById("events-unread").classList.add("hidden");
}

function addAlerts(entries) {
  for (const entry of entries) {
    const key = entry.account + "|" + entry.seq;
    let group = alerts.find((g) => g.key === key);
    if (!group) {
      group = { key, account: entry.account, seq: entry.seq, entries: [] };
      alerts.push(group);
    }
    group.entries.push(entry);
  }
  alerts.sort((a, b) => b.seq - a.seq);
  alerts.length = Math.min(alerts.length, MAX_ALERTS);
  renderAlerts();
}

// One alert per account and log entry: a liquidation with its closes, fees and fund payments, or
// a margin call, or its clearing.
function alertView(group) {
  const find = (type) => group.entries.find((e) => e.event.type === type);
  const closes = group.entries.filter((e) => !["LiquidationTriggered", "MarginCallIssued", "MarginCallCleared"].includes(e.event.type));
  const lines = closes.map((e) => describe(e.account, e.event)[1]);
  const trigger = find("LiquidationTriggered");
  if (trigger) {
    const e = trigger.event;
    lines.unshift(`margin balance ${money(e.margin_balance)} ≤ maintenance ${money(e.maintenance_margin)}`);
    return ["liquidation", "Liquidated: " + scopeLabel(group.account, e.scope), lines];
  }
  if (closes.length) return ["liquidation", closes.some((e) => e.event.type === "PositionAutoDeleveraged") ? "Auto-deleveraged" : "Liquidation", lines];
  const call = find("MarginCallIssued");
  if (call) return ["margin-call", describe(group.account, call.event)[1], []];
  return ["cleared", describe(group.account, find("MarginCallCleared").event)[1], []];
}

function renderAlerts() {
  const list = document.getElementById("alerts");
  document.getElementById("alerts-empty").classList.toggle("hidden", alerts.length > 0);
  keepAnchor(list, () => {
    list.innerHTML = "";
    for (const group of alerts) {
      const [kind, head, lines] = alertView(group);
      const time = group.entries.map((e) => e.time).find((t) => t !== null) ?? null;
      list.append(el("li", { class: kind, "data-account": group.account, "data-seq": String(group.seq), "data-testid": "alert" },
        el("div", { class: "meta" }, el("span", { class: "when", text: shortTime(time) }), ` #${group.seq} · ${group.account}`),
        el("div", { class: "what", text: head }),
        ...lines.map((line) => el("div", { class: "line", text: line }))));
    }
  });
}

// The alert events of one account (for the chart's markers), oldest first.
export function alertEntries(account) {
  return alerts.filter((g) => g.account === account).flatMap((g) => g.entries).reverse();
}
