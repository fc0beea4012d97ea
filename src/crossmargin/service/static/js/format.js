// Formatting and labels. Amounts arrive as decimal strings; they become numbers only for display.

export const num = (text) => (text === null || text === undefined || text === "" ? null : Number(text));

export function money(text) {
  const value = num(text);
  if (value === null) return "—";
  if (value !== 0 && Math.abs(value) < 0.005) return String(text); // dust: not "0.00"
  return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

export function price(text) {
  const value = num(text);
  if (value === null) return "—";
  const digits = value >= 1000 ? 2 : value >= 1 ? 4 : 6;
  return value.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: digits });
}

export function percent(text) {
  const value = num(text);
  return value === null ? "—" : (value * 100).toFixed(1) + "%";
}

// A scope's margin ratio; null means a margin balance at or below zero (past liquidation).
export const ratio = (text) => (text === null || text === undefined ? "≥100%" : percent(text));

export function signed(text) {
  const value = num(text);
  if (value === null) return "—";
  return (value > 0 ? "+" : "") + money(text);
}

export function shortTime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const stamp = new Date(seconds * 1000).toISOString();
  return stamp.slice(5, 10).replace("-", "/") + " " + stamp.slice(11, 16);
}

export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// -- labels: people read "ETH long, isolated", never the engine's "isolated:ETHUSDT:both" ------
const QUOTES = /(USDT|USDC|BUSD|USD)$/;
export const asset = (symbol) => symbol.replace(QUOTES, "") || symbol;

// Which side each (account, symbol, slot) holds or held: from views and from fills, so a scope
// can still be named after its position is gone (a liquidation's events name only the scope).
const sides = {};
const slotOf = (view, side) => (view.position_mode === "hedge" ? side : "both");

export function learnSides(account, view) {
  const known = (sides[account] = sides[account] || {});
  for (const p of view.report.positions) known[p.symbol + ":" + slotOf(view, p.side)] = p.side;
}

export function learnSidesFromEvent(account, event) {
  const known = (sides[account] = sides[account] || {});
  const after = event.position && event.position.after;
  if (after && event.position.symbol) known[event.position.symbol + ":" + event.position.slot] = after.side;
  if (event.type === "PositionLiquidated" || event.type === "PositionAutoDeleveraged") {
    // the event's side is the closing order's; the position held the other one
    if (event.symbol && event.slot && event.side) known[event.symbol + ":" + event.slot] = event.side === "long" ? "short" : "long";
  }
}

export function sideOf(account, symbol, slot) {
  if (slot === "long" || slot === "short") return slot;
  return (sides[account] || {})[symbol + ":" + slot] || null;
}

export function tradedSymbols(account) {
  return Object.keys(sides[account] || {}).map((key) => key.split(":")[0]);
}

export function legLabel(symbol, side, mode) {
  return `${asset(symbol)} ${side}, ${mode}`;
}

export function scopeLabel(account, scope) {
  if (!scope) return "";
  if (scope === "cross") return "cross margin";
  const [kind, symbol, slot] = scope.split(":");
  if (kind !== "isolated" || !symbol) return "a margin scope";
  const side = sideOf(account, symbol, slot);
  return side ? legLabel(symbol, side, "isolated") : `${asset(symbol)}, isolated`;
}
