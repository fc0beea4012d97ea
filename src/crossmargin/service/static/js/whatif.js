// What-if: shock the selected account's marks and see every margin scope it holds, now and
// shocked. The cross scope appears only when the account has cross positions; each isolated leg
// is its own scope. Recomputed whenever the account's view changes (every mark that moves it).
import { api } from "./api.js";
import { asset, el, legLabel, money, price, ratio } from "./format.js";
import { state } from "./state.js";

const shocks = {}; // symbol -> percent
let timer = null;
let sequence = 0; // answers to older requests are dropped

const heldSymbols = (view) => (view ? [...new Set(view.report.positions.map((p) => p.symbol))] : []);

export function resetShocks() {
  for (const symbol of Object.keys(shocks)) delete shocks[symbol];
  document.getElementById("whatif").innerHTML = "";
}

function scopesOf(report, hedge) {
  const cross = report.positions.filter((p) => p.margin_mode === "cross");
  const scopes = [];
  if (cross.length) {
    scopes.push({ id: "cross", label: "Cross margin", ratio: report.margin_ratio, balance: report.margin_balance, liquidatable: report.cross_liquidatable, legs: cross });
  }
  for (const p of report.positions.filter((q) => q.margin_mode === "isolated")) {
    scopes.push({
      id: `isolated:${p.symbol}:${hedge ? p.side : "both"}`, label: legLabel(p.symbol, p.side, "isolated"),
      ratio: p.margin_ratio, balance: p.margin_balance, liquidatable: p.liquidatable, legs: [p],
    });
  }
  return scopes;
}

// Sliders for the held symbols; kept while their set is unchanged (so dragging is not broken).
export function renderWhatIf() {
  const view = state.views[state.selected];
  const box = document.getElementById("whatif");
  const held = heldSymbols(view);
  const current = [...box.querySelectorAll("input")].map((i) => i.dataset.symbol).join(",");
  if (current !== held.join(",") || !held.length) {
    box.innerHTML = "";
    for (const symbol of Object.keys(shocks)) if (!held.includes(symbol)) delete shocks[symbol];
    if (!held.length) box.append(el("p", { class: "muted", text: "No positions to shock." }));
    for (const symbol of held) {
      const shown = el("span", { class: "num shock-value", "data-testid": "shock-value-" + symbol });
      const input = el("input", {
        type: "range", min: "-50", max: "50", step: "1", value: String(shocks[symbol] || 0), "data-symbol": symbol,
        "data-testid": "shock-" + symbol, "aria-label": `shock ${symbol} by percent`,
      });
      input.addEventListener("input", () => { shocks[symbol] = Number(input.value); showShock(symbol, shown); scheduleScenario(); });
      showShock(symbol, shown);
      box.append(el("div", { class: "slider-row" }, el("span", { text: asset(symbol) }), input, shown));
    }
  }
  if (activeShocks().length) scheduleScenario();
  else runScenario(); // at the current marks: nothing to ask the service, so no delay
}

function showShock(symbol, node, shockedPrice) {
  const value = shocks[symbol] || 0;
  const view = state.views[state.selected];
  const mark = view && view.symbols[symbol] ? view.symbols[symbol].mark_price : null;
  const moved = shockedPrice !== undefined ? shockedPrice : mark === null ? null : String(Number(mark) * (1 + value / 100));
  node.textContent = (value > 0 ? "+" : "") + value + "% · " + price(moved);
}

const label = (symbol) => document.querySelector(`[data-testid="shock-value-${CSS.escape(symbol)}"]`);

function activeShocks() {
  return Object.entries(shocks).filter(([, v]) => v !== 0).map(([s, v]) => `${s}=${v}%`);
}

export function scheduleScenario() {
  clearTimeout(timer);
  timer = setTimeout(runScenario, 120);
}

async function runScenario() {
  const account = state.selected;
  const view = state.views[account];
  const mine = ++sequence;
  const result = document.getElementById("whatif-result");
  if (!view || !view.report.positions.length) { result.innerHTML = ""; return; }
  const hedge = view.position_mode === "hedge";
  const shocked = activeShocks();
  if (!shocked.length) {
    for (const symbol of heldSymbols(view)) showShock(symbol, label(symbol)); // the marks moved
    render(result, scopesOf(view.report, hedge), null);
    return;
  }
  const answer = await api("POST", `/v1/accounts/${encodeURIComponent(account)}/scenario`, { shocks: shocked });
  if (mine !== sequence) return;
  if (!answer.ok) {
    result.innerHTML = "";
    result.append(el("p", { class: "error", text: (answer.data && answer.data.message) || "refused" }));
    return;
  }
  for (const p of answer.data.shocked.positions) if (label(p.symbol)) showShock(p.symbol, label(p.symbol), p.mark_price);
  render(result, scopesOf(answer.data.current, hedge), scopesOf(answer.data.shocked, hedge));
}

function status(scope) {
  if (scope.liquidatable) return ["neg", "liquidated"];
  if (scope.ratio === null || Number(scope.ratio) >= 0.8) return ["warn", "margin call"];
  return ["pos", "ok"];
}

function render(box, now, shocked) {
  box.innerHTML = "";
  const after = shocked ? Object.fromEntries(shocked.map((s) => [s.id, s])) : {};
  if (shocked) {
    const lost = shocked.filter((s) => s.liquidatable);
    box.append(el("p", { class: "verdict " + (lost.length ? "neg" : "pos"), "data-testid": "whatif-verdict", text: lost.length ? "Would be liquidated" : "Survives" }));
    if (lost.length) box.append(el("p", { class: "lost", "data-testid": "whatif-lost", text: lost.map((s) => s.label).join(", ") }));
  } else {
    box.append(el("p", { class: "muted", text: "At the current marks; move a slider to shock them." }));
  }
  const head = el("tr", {}, el("th", { text: "Scope" }), el("th", { class: "num", text: "Margin ratio" }),
    el("th", { class: "num", text: "Margin balance" }), el("th", { class: "num", text: "Liq. price" }));
  const body = el("tbody");
  for (const scope of now) {
    const moved = after[scope.id] || null;
    const shown = moved || scope;
    const [cls, word] = status(shown);
    const both = (a, b) => (moved ? `${a} → ${b}` : a);
    const single = scope.legs.length === 1 && scope.id !== "cross";
    body.append(el("tr", { class: "scope", "data-testid": "whatif-scope", "data-scope": scope.id, "data-ratio": shown.ratio === null ? "" : shown.ratio },
      el("td", { class: "head-cell" }, el("span", { class: "scope-name", text: scope.label }), el("span", { class: "state " + cls, text: word })),
      el("td", { class: "num", "data-label": "Margin ratio", text: both(ratio(scope.ratio), moved ? ratio(moved.ratio) : "") }),
      el("td", { class: "num", "data-label": "Margin balance", text: both(money(scope.balance), moved ? money(moved.balance) : "") }),
      el("td", { class: "num liqprice" + (single ? "" : " blank"), "data-label": "Liq. price", text: single ? price(shown.legs[0].liquidation_price) : "" })));
    if (single) continue;
    for (const leg of shown.legs) {
      body.append(el("tr", { class: "leg", "data-testid": "whatif-leg" },
        el("td", { class: "head-cell", text: `${asset(leg.symbol)} ${leg.side} ${Number(leg.leverage)}×` }),
        el("td", { class: "blank" }), el("td", { class: "blank" }),
        el("td", { class: "num liqprice", "data-label": "liq.", text: price(leg.liquidation_price) })));
    }
  }
  box.append(el("table", { class: "grid compact stack" }, el("thead", {}, head), body));
}
