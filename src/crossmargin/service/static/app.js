// crossmargin dashboard: plain JavaScript over the service's HTTP and WebSocket API.
// Amounts arrive as decimal strings; they are only turned into numbers for display.
"use strict";

const MAX_ACCOUNTS = 6;
const MAX_EVENTS = 300;
const state = {
  key: null, me: null, symbols: [], order: [], views: {}, selected: null, symbol: null,
  marks: {}, sockets: [], chart: null, series: null, lines: [], shocks: {}, events: [], seen: new Set(),
};

// -- formatting --------------------------------------------------------------------------------
const num = (text) => (text === null || text === undefined ? null : Number(text));
function money(text) {
  const value = num(text);
  if (value === null) return "—";
  return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}
function price(text) {
  const value = num(text);
  if (value === null) return "—";
  const digits = value >= 1000 ? 2 : value >= 1 ? 4 : 6;
  return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: digits });
}
function percent(text) {
  const value = num(text);
  return value === null ? "—" : (value * 100).toFixed(1) + "%";
}
function signed(text) {
  const value = num(text);
  if (value === null) return "—";
  return (value > 0 ? "+" : "") + money(text);
}
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// -- API ---------------------------------------------------------------------------------------
async function api(method, path, body) {
  const options = { method, headers: { Authorization: "Bearer " + state.key } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (error) { data = null; }
  return { ok: response.ok, status: response.status, data };
}

function openSocket(path, onMessage) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  let socket;
  const connect = () => {
    socket = new WebSocket(scheme + location.host + path);
    socket.onopen = () => socket.send(JSON.stringify({ key: state.key }));
    socket.onmessage = (message) => onMessage(JSON.parse(message.data));
    socket.onclose = (event) => {
      setConnected();
      if (event.code >= 4400 && event.code < 4500) return; // refused: do not retry
      setTimeout(connect, 1500);
    };
    state.sockets.push(socket);
  };
  connect();
}

function setConnected() {
  const open = state.sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
  document.getElementById("conn-dot").classList.toggle("on", open > 0);
}

// -- start -------------------------------------------------------------------------------------
async function start() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) {
    localStorage.setItem("crossmargin-key", fromHash);
    history.replaceState(null, "", location.pathname);
  }
  state.key = localStorage.getItem("crossmargin-key");
  if (!state.key) return showLogin("");
  const me = await api("GET", "/v1/me");
  if (!me.ok) return showLogin(me.status === 401 ? "That key is not valid." : "The service refused.");
  state.me = me.data;
  document.getElementById("login").classList.add("hidden");
  document.getElementById("main").classList.remove("hidden");
  document.getElementById("who").textContent = state.me.operator ? "operator" : "account " + state.me.account;
  const marks = await api("GET", "/v1/marks");
  state.symbols = marks.data.symbols;
  state.marks = marks.data.marks;
  if (state.me.operator) {
    const listed = await api("GET", "/v1/accounts");
    state.order = listed.data.accounts.slice(0, MAX_ACCOUNTS);
    refreshEngine();
    setInterval(refreshEngine, 2000);
  } else {
    state.order = [state.me.account];
  }
  state.selected = state.order[0] || null;
  for (const account of state.order) await watchAccount(account);
  openSocket("/v1/ws/prices", onPriceMessage);
  const held = state.order.flatMap((account) => heldSymbols(state.views[account]));
  state.symbol = heldSymbols(state.views[state.selected])[0] || held[0] || state.symbols[0];
  buildChart();
  renderAll();
}

async function watchAccount(account) {
  const view = await api("GET", "/v1/accounts/" + encodeURIComponent(account));
  if (view.ok) state.views[account] = view.data;
  openSocket("/v1/ws/accounts/" + encodeURIComponent(account), (message) => onAccountMessage(account, message));
}

async function refreshAccounts() {
  // the operator's page picks up accounts opened after it loaded
  const listed = await api("GET", "/v1/accounts");
  if (!listed.ok) return;
  const fresh = listed.data.accounts.filter((a) => !state.order.includes(a)).slice(0, MAX_ACCOUNTS - state.order.length);
  for (const account of fresh) {
    state.order.push(account);
    await watchAccount(account);
  }
  if (fresh.length) {
    if (!state.selected) state.selected = state.order[0];
    renderAll();
  }
}

function showLogin(message) {
  document.getElementById("main").classList.add("hidden");
  document.getElementById("login").classList.remove("hidden");
  document.getElementById("login-error").textContent = message;
}

async function refreshEngine() {
  const status = await api("GET", "/v1/engine");
  if (!status.ok) return;
  if (state.order.length < MAX_ACCOUNTS) refreshAccounts();
  document.getElementById("venue").textContent = status.data.venue;
  const feed = status.data.feed;
  const box = document.getElementById("feed-status");
  if (!feed) { box.textContent = "prices: posted by the operator"; return; }
  if (feed.kind === "replay") {
    const when = feed.time ? feed.time.replace("T", " ").slice(0, 16) + " UTC" : "starting";
    box.innerHTML = "";
    box.append("replaying ", el("b", { text: feed.title }), " · ", el("b", { text: when }),
      ` · ${feed.speed}× · ${feed.done ? "finished" : Math.round(100 * feed.marks_done / feed.marks_total) + "%"}`);
  } else {
    box.textContent = `live feed · ${feed.polls} polls` + (feed.last_error ? ` · last error: ${feed.last_error}` : "");
  }
}

// -- streams -----------------------------------------------------------------------------------
function onAccountMessage(account, message) {
  if (message.type === "ready") { setConnected(); return; }
  if (message.type === "account") {
    state.views[account] = message.view;
    renderAll();
  } else if (message.type === "events") {
    for (const item of message.events) addEvent(account, item);
    renderEvents();
    renderCards();
  } else if (message.type === "event") {
    addEvent(account, message);
    renderEvents();
    if (message.event.type === "LiquidationTriggered") renderCards();
  }
}

function onPriceMessage(message) {
  if (message.type === "ready") { setConnected(); return; }
  if (message.type === "prices") {
    Object.assign(state.marks, message.marks);
  } else if (message.type === "price") {
    state.marks[message.symbol] = { price: message.price, time: message.time };
    if (message.symbol === state.symbol && state.series) {
      state.series.update({ time: message.time, value: Number(message.price) });
    }
  }
}

function addEvent(account, item) {
  const id = account + ":" + item.seq + ":" + item.event.type + ":" + (item.event.symbol || "") + ":" + (item.event.scope || "");
  if (state.seen.has(id)) return;
  state.seen.add(id);
  state.events.push({ account, seq: item.seq, event: item.event });
  state.events.sort((a, b) => b.seq - a.seq);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
}

// -- rendering ---------------------------------------------------------------------------------
function heldSymbols(view) {
  if (!view) return [];
  return [...new Set(view.report.positions.map((p) => p.symbol))];
}

function renderAll() {
  renderCards();
  renderPositions();
  renderModes();
  renderWhatIf();
  renderTabs();
  updateLines();
}

function modeBadge(view) {
  const modes = new Set(view.report.positions.map((p) => p.margin_mode));
  if (modes.size === 0) return "no positions";
  return modes.size > 1 ? "mixed" : [...modes][0];
}

function gauge(ratioText, testid) {
  const ratio = ratioText === null ? 0 : Number(ratioText);
  const scale = 1.2; // the bar spans 0 to 120%
  const fill = el("div", { class: "fill" + (ratio >= 1 ? " danger" : ratio >= 0.8 ? " warn" : "") });
  fill.style.width = Math.min(100, (ratio / scale) * 100) + "%";
  const tick = (at, label) => {
    const node = el("div", { class: "tick" }, el("span", { text: label }));
    node.style.left = (at / scale) * 100 + "%";
    return node;
  };
  return el("div", { class: "gauge", "data-testid": testid, "data-ratio": ratioText === null ? "" : ratioText },
    fill, tick(0.8, "80%"), tick(1.0, "100%"));
}

function renderCards() {
  const box = document.getElementById("accounts");
  box.innerHTML = "";
  for (const account of state.order) {
    const view = state.views[account];
    if (!view) continue;
    const s = view.summary;
    const badges = [el("span", { class: "badge", text: modeBadge(view) })];
    if (s.margin_calls.length) badges.push(el("span", { class: "badge call", text: "margin call" }));
    if (view.scopes.some((scope) => scope.liquidatable)) badges.push(el("span", { class: "badge liq", text: "liquidating" }));
    const liquidations = state.events.filter((item) => item.account === account && item.event.type === "LiquidationTriggered").length;
    if (liquidations) badges.push(el("span", { class: "badge liq", "data-testid": "liquidated-" + account, text: `liquidated ×${liquidations}` }));
    const figure = (label, value) => el("div", {}, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }));
    const card = el("div", {
      class: "card" + (account === state.selected ? " selected" : ""), "data-testid": "card-" + account,
      onclick: () => { state.selected = account; state.shocks = {}; renderAll(); },
    },
      el("div", { class: "card-head" }, el("div", { class: "card-title", text: account }, ...badges),
        el("div", { class: num(s.unrealized_pnl) >= 0 ? "pos" : "neg", text: "uPnL " + signed(s.unrealized_pnl) })),
      el("div", { class: "figures" },
        figure("Wallet (cross)", money(s.wallet_balance)),
        figure("Isolated margin", money(s.isolated_margin)),
        figure("Margin balance", money(s.equity)),
        figure("Maintenance margin", money(s.maintenance_margin))),
      gauge(s.margin_ratio, "gauge-" + account),
      el("div", { class: "gauge-caption" },
        el("span", { class: "muted", text: "margin ratio (MM ÷ margin balance)" + (s.worst_scope ? " · worst: " + s.worst_scope : "") }),
        el("b", { "data-testid": "ratio-" + account, text: percent(s.margin_ratio) })));
    box.append(card);
  }
}

function renderPositions() {
  const view = state.views[state.selected];
  document.getElementById("positions-account").textContent = state.selected ? "· " + state.selected : "";
  const body = document.getElementById("positions-body");
  body.innerHTML = "";
  if (!view) return;
  if (!view.report.positions.length) {
    body.append(el("tr", {}, el("td", { colspan: "10", class: "muted", text: "No open positions." })));
    return;
  }
  for (const p of view.report.positions) {
    const mark = num(p.mark_price), liq = num(p.liquidation_price);
    const distance = liq === null ? "—" : (((liq - mark) / mark) * 100).toFixed(1) + "%";
    const pnl = num(p.unrealized_pnl);
    body.append(el("tr", { "data-testid": `position-${state.selected}-${p.symbol}` },
      el("td", { text: p.symbol }),
      el("td", { class: p.side, text: p.side }),
      el("td", { text: p.margin_mode + " " + Number(p.leverage) + "×" }),
      el("td", { class: "num", text: p.quantity }),
      el("td", { class: "num", text: price(p.entry_price) }),
      el("td", { class: "num", text: price(p.mark_price) }),
      el("td", { class: "num " + (pnl >= 0 ? "pos" : "neg"), text: signed(p.unrealized_pnl) }),
      el("td", { class: "num", text: percent(p.margin_ratio) }),
      el("td", { class: "num liqprice", "data-testid": `liq-cell-${state.selected}-${p.symbol}`, text: price(p.liquidation_price) }),
      el("td", { class: "num muted", text: distance })));
  }
}

function renderModes() {
  const view = state.views[state.selected];
  const box = document.getElementById("modes");
  box.innerHTML = "";
  if (!view) return;
  for (const symbol of state.symbols) {
    const current = view.symbols[symbol] ? view.symbols[symbol].margin_mode : "cross";
    const button = (mode) => el("button", {
      class: mode === current ? "active" : "", "data-testid": `mode-${symbol}-${mode}`, text: mode,
      onclick: () => switchMode(symbol, mode),
    });
    box.append(el("div", { class: "mode-row" },
      el("span", {}, symbol, el("span", { class: "muted", text: "  " + (view.symbols[symbol] ? Number(view.symbols[symbol].leverage) + "×" : "") })),
      el("span", { class: "segmented" }, button("cross"), button("isolated"))));
  }
}

async function switchMode(symbol, mode) {
  const account = state.selected;
  const message = document.getElementById("mode-message");
  const result = await api("PUT", `/v1/accounts/${encodeURIComponent(account)}/margin-mode`, { symbol, margin_mode: mode });
  if (result.ok) {
    message.className = "message ok";
    message.textContent = `${symbol} is now ${mode} margined.`;
    const view = await api("GET", "/v1/accounts/" + encodeURIComponent(account));
    if (view.ok) { state.views[account] = view.data; renderAll(); }
  } else {
    message.className = "message refused";
    const data = result.data || {};
    message.textContent = `Refused: ${data.message || "HTTP " + result.status}` + (data.reason ? ` [${data.reason}]` : "");
  }
}

function renderWhatIf() {
  const view = state.views[state.selected];
  const box = document.getElementById("whatif");
  const held = heldSymbols(view);
  const current = [...box.querySelectorAll("input")].map((i) => i.dataset.symbol).join(",");
  if (current === held.join(",") && held.length) return; // keep the sliders while dragging
  box.innerHTML = "";
  document.getElementById("whatif-result").innerHTML = "";
  if (!held.length) { box.append(el("p", { class: "muted", text: "No positions to shock." })); return; }
  for (const symbol of held) {
    const value = state.shocks[symbol] || 0;
    const label = el("span", { class: "num", text: value + "%" });
    const input = el("input", { type: "range", min: "-50", max: "50", step: "1", value: String(value), "data-symbol": symbol, "data-testid": "shock-" + symbol });
    input.addEventListener("input", () => { state.shocks[symbol] = Number(input.value); label.textContent = input.value + "%"; scheduleScenario(); });
    box.append(el("div", { class: "slider-row" }, el("span", { text: symbol }), input, label));
  }
}

let scenarioTimer = null;
function scheduleScenario() {
  clearTimeout(scenarioTimer);
  scenarioTimer = setTimeout(runScenario, 150);
}

async function runScenario() {
  const account = state.selected;
  const shocks = Object.entries(state.shocks).filter(([, v]) => v !== 0).map(([s, v]) => `${s}=${v}%`);
  const box = document.getElementById("whatif-result");
  if (!shocks.length) { box.innerHTML = ""; return; }
  const result = await api("POST", `/v1/accounts/${encodeURIComponent(account)}/scenario`, { shocks });
  box.innerHTML = "";
  if (!result.ok) { box.append(el("p", { class: "error", text: (result.data && result.data.message) || "refused" })); return; }
  const shocked = result.data.shocked;
  const positions = shocked.positions;
  const liquidated = shocked.liquidatable;
  box.append(el("p", { class: "verdict " + (liquidated ? "neg" : "pos"), "data-testid": "whatif-verdict",
    text: liquidated ? "Would be liquidated" : "Survives" }),
    el("p", { class: "muted", text: `cross margin ratio ${percent(shocked.margin_ratio)} · equity ${money(shocked.equity)}` }));
  for (const p of positions) {
    box.append(el("div", { class: "muted" }, `${p.symbol} at ${price(p.mark_price)}: PnL ${signed(p.unrealized_pnl)}` +
      (p.margin_ratio !== null ? `, ratio ${percent(p.margin_ratio)}` : "") + (p.liquidatable ? " — liquidatable" : "")));
  }
}

// -- chart -------------------------------------------------------------------------------------
function buildChart() {
  const container = document.getElementById("chart");
  state.chart = LightweightCharts.createChart(container, {
    autoSize: true,
    layout: { background: { color: "#161c24" }, textColor: "#9aa7b4" },
    grid: { vertLines: { color: "#1e2834" }, horzLines: { color: "#1e2834" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#243040" },
    rightPriceScale: { borderColor: "#243040" },
    crosshair: { mode: 0 },
  });
  state.series = state.chart.addLineSeries({
    color: "#d8dee6", lineWidth: 2, priceLineVisible: true, title: "mark",
    // keep the entry and liquidation lines on screen: a trader must see how far away they are
    autoscaleInfoProvider: (original) => {
      const range = original();
      const prices = state.linePrices || [];
      if (!range || prices.length === 0) return range;
      const low = Math.min(range.priceRange.minValue, ...prices);
      const high = Math.max(range.priceRange.maxValue, ...prices);
      const pad = (high - low) * 0.05;
      return { ...range, priceRange: { minValue: low - pad, maxValue: high + pad } };
    },
  });
  loadHistory();
}

async function loadHistory() {
  const symbol = state.symbol;
  const history = await api("GET", `/v1/marks/${encodeURIComponent(symbol)}/history`);
  if (!history.ok || symbol !== state.symbol) return;
  state.series.setData(history.data.points.map((p) => ({ time: p.time, value: Number(p.price) })));
  state.chart.timeScale().fitContent();
  updateLines();
}

function renderTabs() {
  const box = document.getElementById("symbol-tabs");
  box.innerHTML = "";
  for (const symbol of state.symbols) {
    box.append(el("button", { class: symbol === state.symbol ? "active" : "", "data-testid": "tab-" + symbol, text: symbol,
      onclick: () => { state.symbol = symbol; renderTabs(); loadHistory(); } }));
  }
}

function updateLines() {
  if (!state.series) return;
  for (const line of state.lines) state.series.removePriceLine(line);
  state.lines = [];
  state.linePrices = [];
  const legend = document.getElementById("chart-legend");
  legend.innerHTML = "";
  for (const account of state.order) {
    const view = state.views[account];
    if (!view) continue;
    for (const p of view.report.positions) {
      if (p.symbol !== state.symbol) continue;
      const mine = account === state.selected;
      if (mine) {
        state.lines.push(state.series.createPriceLine({ price: Number(p.entry_price), color: "#4c9aff", lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "entry" }));
        state.linePrices.push(Number(p.entry_price));
        legend.append(el("span", { class: "entry", "data-testid": `entry-${account}-${p.symbol}`, text: `entry ${price(p.entry_price)}` }));
      }
      if (p.liquidation_price !== null) {
        const color = mine ? "#ef5350" : "#b388ff";
        state.lines.push(state.series.createPriceLine({ price: Number(p.liquidation_price), color, lineWidth: mine ? 2 : 1, lineStyle: mine ? 0 : 1, axisLabelVisible: true, title: `liq ${account}` }));
        if (mine) state.linePrices.push(Number(p.liquidation_price));
        legend.append(el("span", { class: "liq" + (mine ? "" : " other"), "data-testid": `liq-${account}-${p.symbol}`, "data-price": p.liquidation_price, text: `liq ${account} ${price(p.liquidation_price)}` }));
      }
    }
  }
}

// -- events ------------------------------------------------------------------------------------
const EVENT_TEXT = {
  LiquidationTriggered: ["liquidation", (e) => `Liquidation triggered on ${e.scope}: margin balance ${money(e.margin_balance)} ≤ maintenance ${money(e.maintenance_margin)}`],
  PositionLiquidated: ["liquidation", (e) => `Liquidated ${e.quantity} ${e.symbol} at ${price(e.price)} (PnL ${signed(e.realized_pnl)})`],
  PositionAutoDeleveraged: ["liquidation", (e) => `Auto-deleveraged ${e.quantity} ${e.symbol} at ${price(e.price)}`],
  LiquidationFeeCharged: ["liquidation", (e) => `Liquidation fee ${money(e.amount || e.fee)}`],
  BadDebtRecorded: ["liquidation", (e) => `Bad debt ${money(e.amount)}`],
  InsuranceFundPaid: ["liquidation", (e) => `Insurance fund paid ${money(e.amount)}`],
  MarginCallIssued: ["margin-call", (e) => `Margin call on ${e.scope}` + (e.margin_ratio ? ` (ratio ${percent(e.margin_ratio)})` : "")],
  MarginCallCleared: ["", (e) => `Margin call cleared on ${e.scope}`],
  OrderFilled: ["fill", (e) => `Filled ${e.side} ${e.quantity} ${e.symbol} at ${price(e.price)}`],
  OrderAccepted: ["", (e) => { const o = e.order || e.accepted; return `Order ${o.order_id}: ${o.order_type} ${o.side} ${o.quantity} ${o.symbol}`; }],
  OrderCancelled: ["", (e) => `Order ${e.order_id} cancelled (${e.reason})`],
  FundsDeposited: ["", (e) => `Deposited ${money(e.amount)}`],
  FundsWithdrawn: ["", (e) => `Withdrew ${money(e.amount)}`],
  MarginModeChanged: ["", (e) => `${e.symbol} margin mode → ${e.margin_mode}`],
  LeverageChanged: ["", (e) => `${e.symbol} leverage → ${Number(e.leverage)}×`],
  FundingSettled: ["", (e) => `Funding on ${e.symbol} at rate ${e.rate}`],
  AccountOpened: ["", () => "Account opened"],
};

function renderEvents() {
  const box = document.getElementById("events");
  box.innerHTML = "";
  for (const item of state.events.slice(0, 150)) {
    const known = EVENT_TEXT[item.event.type];
    const kind = known ? known[0] : "";
    let text;
    try { text = known ? known[1](item.event) : item.event.type; } catch (error) { text = item.event.type; }
    box.append(el("li", { class: kind, "data-type": item.event.type, "data-account": item.account },
      el("div", { class: "meta", text: `#${item.seq} · ${item.account} · ${item.event.type}` }),
      el("div", { class: kind ? "what" : "", text })));
  }
}

// -- wiring ------------------------------------------------------------------------------------
document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem("crossmargin-key", document.getElementById("key-input").value.trim());
  location.reload();
});
document.getElementById("logout").addEventListener("click", () => {
  localStorage.removeItem("crossmargin-key");
  location.reload();
});
document.getElementById("whatif-reset").addEventListener("click", () => {
  state.shocks = {};
  document.getElementById("whatif").innerHTML = "";
  renderWhatIf();
});
start();
