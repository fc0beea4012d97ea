// crossmargin dashboard: plain JavaScript modules over the service's HTTP and WebSocket API.
import { api, openSocket } from "./js/api.js";
import { renderCards, renderModes, renderPositions } from "./js/cards.js";
import { buildChart, onPrice, renderMarkers, syncChart, updateLines } from "./js/chart.js";
import { awaitDate, notePrice, noteView } from "./js/clock.js";
import { addEvents, date, readNewest } from "./js/feed.js";
import { el, learnSides } from "./js/format.js";
import { MAX_ACCOUNTS, state } from "./js/state.js";
import { renderWhatIf, resetShocks } from "./js/whatif.js";

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
  if (state.me.operator) {
    const listed = await api("GET", "/v1/accounts");
    state.order = listed.data.accounts.slice(0, MAX_ACCOUNTS);
    refreshEngine();
    setInterval(refreshEngine, 2000);
  } else {
    state.order = [state.me.account];
  }
  state.selected = state.order[0] || null;
  buildChart();
  for (const account of state.order) await watchAccount(account);
  openSocket("/v1/ws/prices", onPriceMessage);
  renderAll();
}

function setView(account, view) {
  state.views[account] = view;
  learnSides(account, view);
}

async function watchAccount(account) {
  const view = await api("GET", "/v1/accounts/" + encodeURIComponent(account));
  if (view.ok) setView(account, view.data);
  openSocket("/v1/ws/accounts/" + encodeURIComponent(account), (message) => onAccountMessage(account, message));
}

async function reloadAccount(account) {
  const view = await api("GET", "/v1/accounts/" + encodeURIComponent(account));
  if (view.ok) { setView(account, view.data); renderAll(); }
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
  box.innerHTML = "";
  if (feed.kind === "replay") {
    state.replaying = true;
    const when = state.latestTime ? replayTime(state.latestTime) : feed.time ? feed.time.replace("T", " ").slice(0, 16) + " UTC" : "starting";
    const progress = feed.done ? "finished" : Math.round(100 * feed.marks_done / feed.marks_total) + "%";
    box.append("replaying ", el("b", { text: feed.title }), " · ", el("b", { "data-testid": "replay-time", text: when }), ` · ${feed.speed}× · ${progress}`);
  } else {
    box.textContent = `live feed · ${feed.polls} polls` + (feed.last_error ? ` · last error: ${feed.last_error}` : "");
  }
}

const replayTime = (seconds) => new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 16) + " UTC";

// -- streams -----------------------------------------------------------------------------------
function onAccountMessage(account, message) {
  if (message.type === "account") {
    setView(account, message.view);
    noteView(account, message.view);
    if (account === state.selected) renderAll();
    else { renderCards(select); updateLines(); }
  } else if (message.type === "events") {
    addEvents(account, message.events);
    renderCards(select);
    renderMarkers();
  } else if (message.type === "event") {
    const alerting = addEvents(account, [message]);
    if (alerting.length) {
      awaitDate(account, alerting, date);
      renderCards(select);
      renderMarkers();
    }
  }
}

function onPriceMessage(message) {
  if (message.type === "prices") {
    for (const [symbol, mark] of Object.entries(message.marks)) notePrice(symbol, mark.time, mark.price);
  } else if (message.type === "price") {
    notePrice(message.symbol, message.time, message.price);
    const clock = document.querySelector("[data-testid=replay-time]");
    if (state.replaying && clock) clock.textContent = replayTime(state.latestTime); // the poll lags
    onPrice(message.symbol, message.time, message.price);
  }
}

// -- rendering ---------------------------------------------------------------------------------
function select(account) {
  if (account === state.selected) return;
  state.selected = account;
  resetShocks();
  document.getElementById("mode-message").textContent = "";
  renderAll();
}

function renderAll() {
  renderCards(select);
  renderPositions();
  renderModes(reloadAccount);
  renderWhatIf();
  syncChart();
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
document.getElementById("whatif-reset").addEventListener("click", () => { resetShocks(); renderWhatIf(); });
document.getElementById("events").addEventListener("scroll", (event) => { if (event.target.scrollTop <= 0) readNewest(); });
document.getElementById("events-unread").addEventListener("click", () => { document.getElementById("events").scrollTop = 0; readNewest(); });
start();
