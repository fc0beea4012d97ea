// The mark chart of the selected account: its symbols (a selector when it holds several), its
// entry and liquidation lines, markers where it was liquidated or called. The chart keeps the
// whole history in view as marks arrive, so a crash stays on screen, until the reader zooms or
// pans; "fit all" brings that back.
import { api } from "./api.js";
import { el, price, tradedSymbols } from "./format.js";
import { alertEntries } from "./feed.js";
import { state } from "./state.js";

let chart = null;
let series = null;
let symbol = null;
let points = []; // the series' data, oldest first
let lines = [];
let linePrices = [];
let follow = true;
let compare = false;

export const chartSymbol = () => symbol;

// The selected account's symbols: those it holds, then those it held (a liquidated leg still
// shows its crash); an account that never traded gets every symbol.
function symbolsFor(account) {
  const view = state.views[account];
  const held = view ? [...new Set(view.report.positions.map((p) => p.symbol))] : [];
  const traded = [...new Set(tradedSymbols(account))].filter((s) => state.symbols.includes(s) && !held.includes(s)).sort();
  const symbols = [...held, ...traded];
  return [symbols.length ? symbols : state.symbols, held];
}

export function buildChart() {
  const container = document.getElementById("chart");
  chart = LightweightCharts.createChart(container, {
    autoSize: true,
    layout: { background: { color: "#161c24" }, textColor: "#9aa7b4" },
    grid: { vertLines: { color: "#1e2834" }, horzLines: { color: "#1e2834" } },
    // a bar may be thinner than a pixel (the whole history fits a phone), and a resize keeps
    // the time range in view rather than the bar width
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#243040", minBarSpacing: 0.01, lockVisibleTimeRangeOnResize: true },
    rightPriceScale: { borderColor: "#243040" },
    crosshair: { mode: 0 },
  });
  series = chart.addLineSeries({
    color: "#d8dee6", lineWidth: 2, priceLineVisible: true, title: "mark",
    // keep the entry and liquidation lines on screen: a trader must see how far away they are
    autoscaleInfoProvider: (original) => {
      const range = original();
      if (!range || linePrices.length === 0) return range;
      const low = Math.min(range.priceRange.minValue, ...linePrices);
      const high = Math.max(range.priceRange.maxValue, ...linePrices);
      const pad = (high - low) * 0.05;
      return { ...range, priceRange: { minValue: low - pad, maxValue: high + pad } };
    },
  });
  // what is on screen, for the reader's tests: the logical range (point indexes) and the points
  chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    if (!range) return;
    container.dataset.visibleFrom = range.from.toFixed(2);
    container.dataset.visibleTo = range.to.toFixed(2);
  });
  const stopFollowing = () => setFollow(false);
  container.addEventListener("wheel", stopFollowing, { passive: true });
  container.addEventListener("pointermove", (event) => { if (event.buttons) stopFollowing(); });
  document.getElementById("chart-fit").addEventListener("click", () => setFollow(true));
  document.getElementById("chart-compare").addEventListener("change", (event) => { compare = event.target.checked; updateLines(); });
  document.addEventListener("events-dated", renderMarkers);
}

function setFollow(on) {
  if (follow === on) return;
  follow = on;
  document.getElementById("chart-fit").classList.toggle("hidden", on);
  if (on) chart.timeScale().fitContent();
}

// Called after any change of the selected account or its view.
export function syncChart() {
  if (!series) return;
  const [symbols, held] = symbolsFor(state.selected);
  if (!symbols.includes(symbol)) {
    symbol = symbols[0] || null;
    loadHistory();
  }
  document.getElementById("chart").dataset.symbol = symbol || "";
  renderSelector(symbols, held);
  updateLines();
  renderMarkers();
}

function renderSelector(symbols, held) {
  const box = document.getElementById("symbol-tabs");
  box.innerHTML = "";
  if (symbols.length > 1) {
    for (const s of symbols) {
      box.append(el("button", {
        class: s === symbol ? "active" : "", "data-testid": "tab-" + s, text: s, "aria-pressed": String(s === symbol),
        title: held.includes(s) ? "" : "no open position",
        onclick: () => { symbol = s; syncChart(); loadHistory(); },
      }));
    }
  } else if (symbol) {
    box.append(el("span", { class: "chart-symbol", "data-testid": "chart-symbol", text: symbol }));
  }
  if (symbol && !held.includes(symbol) && state.selected) box.append(el("span", { class: "muted hint", "data-testid": "chart-hint", text: "no open position" }));
}

async function loadHistory() {
  const wanted = symbol;
  if (!wanted) return;
  const history = await api("GET", `/v1/marks/${encodeURIComponent(wanted)}/history`);
  if (!history.ok || wanted !== symbol) return;
  points = history.data.points.map((p) => ({ time: p.time, value: Number(p.price) }));
  series.setData(points);
  document.getElementById("chart").dataset.points = String(points.length);
  chart.timeScale().fitContent();
  setFollow(true);
  updateLines();
  renderMarkers();
}

export function onPrice(priceSymbol, time, value) {
  if (priceSymbol !== symbol || !series) return;
  const last = points.length ? points[points.length - 1].time : null;
  if (last !== null && time < last) { loadHistory(); return; } // the history restarted
  const point = { time, value: Number(value) };
  if (last === time) points[points.length - 1] = point;
  else points.push(point);
  series.update(point);
  document.getElementById("chart").dataset.points = String(points.length);
  if (follow) chart.timeScale().fitContent();
}

export function updateLines() {
  if (!series) return;
  for (const line of lines) series.removePriceLine(line);
  lines = [];
  linePrices = [];
  const legend = document.getElementById("chart-legend");
  legend.innerHTML = "";
  const accounts = compare ? state.order : [state.selected];
  for (const account of accounts) {
    const view = state.views[account];
    if (!view) continue;
    const mine = account === state.selected;
    for (const p of view.report.positions) {
      if (p.symbol !== symbol) continue;
      if (mine) {
        lines.push(series.createPriceLine({ price: Number(p.entry_price), color: "#4c9aff", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "entry" }));
        linePrices.push(Number(p.entry_price));
        legend.append(el("span", { class: "entry", "data-testid": `entry-${account}-${p.symbol}`, "data-price": p.entry_price, text: `entry ${price(p.entry_price)}` }));
      }
      if (p.liquidation_price === null) continue;
      lines.push(series.createPriceLine({
        price: Number(p.liquidation_price), color: mine ? "#ef5350" : "#b388ff", lineWidth: mine ? 2 : 1,
        lineStyle: mine ? 0 : 1, axisLabelVisible: true, title: mine ? "liq" : account,
      }));
      if (mine) linePrices.push(Number(p.liquidation_price));
      legend.append(el("span", {
        class: "liq" + (mine ? "" : " other"), "data-testid": `liq-${account}-${p.symbol}`, "data-price": p.liquidation_price,
        text: `liq${mine ? "" : " " + account} ${price(p.liquidation_price)}`,
      }));
    }
  }
}

// The time of the newest point at exactly this price (a forced close happens at the mark).
function timeOfPrice(text) {
  const value = Number(text);
  for (let i = points.length - 1; i >= 0; i -= 1) if (points[i].value === value) return points[i].time;
  return null;
}

export function renderMarkers() {
  if (!series) return;
  const markers = [];
  for (const entry of alertEntries(state.selected)) {
    const e = entry.event;
    const closes = e.type === "PositionLiquidated" || e.type === "PositionAutoDeleveraged";
    if (closes && e.symbol === symbol) {
      const time = entry.time ?? timeOfPrice(e.price); // a page opened later finds a close at the mark
      if (time !== null) markers.push({ time, position: "aboveBar", color: "#ef5350", shape: "arrowDown", text: e.liquidity === "adl" || e.type === "PositionAutoDeleveraged" ? "ADL" : "liq" });
    }
    const scoped = e.scope === "cross" || (e.scope || "").split(":")[1] === symbol;
    if (e.type === "MarginCallIssued" && scoped && entry.time !== null) {
      markers.push({ time: entry.time, position: "belowBar", color: "#f0b90b", shape: "circle", text: "call" });
    }
  }
  markers.sort((a, b) => a.time - b.time);
  series.setMarkers(markers);
  document.getElementById("chart").dataset.markers = markers.map((m) => m.text).join(",");
}

