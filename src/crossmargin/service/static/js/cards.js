// The account cards, the positions table and the margin-mode switch of the selected account.
import { api } from "./api.js";
import { el, money, num, percent, price, ratio, scopeLabel, signed } from "./format.js";
import { liquidationCount } from "./feed.js";
import { state } from "./state.js";

function modeBadge(view) {
  const modes = new Set(view.report.positions.map((p) => p.margin_mode));
  if (modes.size === 0) return "no positions";
  return modes.size > 1 ? "mixed" : [...modes][0];
}

function gauge(ratioText, testid) {
  const value = ratioText === null ? 0 : Number(ratioText); // null: no positions, nothing at risk
  const scale = 1.2; // the bar spans 0 to 120%
  const fill = el("div", { class: "fill" + (value >= 1 ? " danger" : value >= 0.8 ? " warn" : "") });
  fill.style.width = Math.min(100, (value / scale) * 100) + "%";
  const tick = (at, label) => {
    const node = el("div", { class: "tick" }, el("span", { text: label }));
    node.style.left = (at / scale) * 100 + "%";
    return node;
  };
  return el("div", { class: "gauge", "data-testid": testid, "data-ratio": ratioText === null ? "" : ratioText },
    fill, tick(0.8, "80%"), tick(1.0, "100%"));
}

function scopeLine(account, view) {
  if (view.scopes.length < 2) return null;
  const parts = view.scopes.map((s) => `${scopeLabel(account, s.scope)} ${ratio(s.margin_ratio)}`);
  return el("div", { class: "scopes muted", "data-testid": "scopes-" + account, text: parts.join(" · ") });
}

export function renderCards(onSelect) {
  const box = document.getElementById("accounts");
  box.innerHTML = "";
  for (const account of state.order) {
    const view = state.views[account];
    if (!view) continue;
    const s = view.summary;
    const badges = [el("span", { class: "badge", text: modeBadge(view) })];
    if (s.margin_calls.length) badges.push(el("span", { class: "badge call", "data-testid": "margin-call-" + account, text: "margin call" }));
    if (view.scopes.some((scope) => scope.liquidatable)) badges.push(el("span", { class: "badge liq", text: "liquidating" }));
    const liquidations = liquidationCount(account);
    if (liquidations) badges.push(el("span", { class: "badge liq", "data-testid": "liquidated-" + account, text: `liquidated ×${liquidations}` }));
    const figure = (label, value) => el("div", {}, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }));
    const worst = s.worst_scope ? scopeLabel(account, s.worst_scope) : "";
    box.append(el("div", {
      class: "card" + (account === state.selected ? " selected" : ""), "data-testid": "card-" + account,
      role: "button", tabindex: "0", "aria-pressed": String(account === state.selected),
      onclick: () => onSelect(account),
      onkeydown: (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); onSelect(account); } },
    },
      el("div", { class: "card-head" },
        el("div", { class: "card-title" }, el("span", { class: "name", text: account }), ...badges),
        el("div", { class: "upnl " + (num(s.unrealized_pnl) >= 0 ? "pos" : "neg"), text: "uPnL " + signed(s.unrealized_pnl) })),
      el("div", { class: "figures" },
        figure("Wallet (cross)", money(s.wallet_balance)),
        figure("Isolated margin", money(s.isolated_margin)),
        figure("Margin balance", money(s.equity)),
        figure("Maintenance", money(s.maintenance_margin))),
      gauge(s.margin_ratio, "gauge-" + account),
      el("div", { class: "gauge-caption" },
        el("span", { class: "muted", "data-testid": "worst-" + account, text: "margin ratio" + (worst ? " · worst: " + worst : "") }),
        el("b", { "data-testid": "ratio-" + account, text: percent(s.margin_ratio) })),
      scopeLine(account, view)));
  }
}

const COLUMNS = ["Symbol", "Side", "Mode", "Size", "Entry", "Mark", "Unrealized PnL", "Margin ratio", "Liq. price", "Distance"];

export function renderPositions() {
  const view = state.views[state.selected];
  document.getElementById("positions-account").textContent = state.selected ? "· " + state.selected : "";
  const body = document.getElementById("positions-body");
  body.innerHTML = "";
  if (!view) return;
  if (!view.report.positions.length) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: String(COLUMNS.length), class: "muted", text: "No open positions." })));
    return;
  }
  for (const p of view.report.positions) {
    const mark = num(p.mark_price), liq = num(p.liquidation_price);
    const distance = liq === null ? "—" : (((liq - mark) / mark) * 100).toFixed(1) + "%";
    const cells = [
      [p.symbol, "head-cell sym"], [p.side, p.side], [p.margin_mode + " " + Number(p.leverage) + "×", ""],
      [p.quantity, "num"], [price(p.entry_price), "num"], [price(p.mark_price), "num"],
      [signed(p.unrealized_pnl), "num " + (num(p.unrealized_pnl) >= 0 ? "pos" : "neg")],
      [ratio(p.margin_ratio), "num"], [price(p.liquidation_price), "num liqprice"], [distance, "num muted"],
    ];
    body.append(el("tr", { "data-testid": `position-${state.selected}-${p.symbol}` },
      ...cells.map(([text, cls], i) => el("td", {
        class: cls, text, "data-label": COLUMNS[i],
        "data-testid": i === 8 ? `liq-cell-${state.selected}-${p.symbol}` : undefined,
      }))));
  }
}

export function renderModes(reload) {
  const view = state.views[state.selected];
  const box = document.getElementById("modes");
  box.innerHTML = "";
  if (!view) return;
  for (const symbol of state.symbols) {
    const held = view.symbols[symbol];
    const current = held ? held.margin_mode : "cross";
    const button = (mode) => el("button", {
      class: mode === current ? "active" : "", "data-testid": `mode-${symbol}-${mode}`, text: mode,
      "aria-pressed": String(mode === current), onclick: () => switchMode(symbol, mode, reload),
    });
    box.append(el("div", { class: "mode-row" },
      el("span", {}, symbol, el("span", { class: "muted", text: held ? "  " + Number(held.leverage) + "×" : "" })),
      el("span", { class: "segmented" }, button("cross"), button("isolated"))));
  }
}

async function switchMode(symbol, mode, reload) {
  const account = state.selected;
  const message = document.getElementById("mode-message");
  const result = await api("PUT", `/v1/accounts/${encodeURIComponent(account)}/margin-mode`, { symbol, margin_mode: mode });
  if (result.ok) {
    message.className = "message ok";
    message.textContent = `${symbol} is now ${mode} margined.`;
    await reload(account);
  } else {
    message.className = "message refused";
    const data = result.data || {};
    message.textContent = `Refused: ${data.message || "HTTP " + result.status}` + (data.reason ? ` [${data.reason}]` : "");
  }
}
