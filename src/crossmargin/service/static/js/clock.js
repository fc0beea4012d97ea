// Dates live alert events by the marks that caused them. An event carries no time; it comes on
// the account stream, followed by the account's view, whose marks are those after its log entry.
// The marks themselves come on the price stream (another socket, a little ahead or behind): an
// event is dated by the newest time at which the price stream showed its symbols at the view's
// marks. When the service writes several ticks in one group, the group's last tick dates them.
import { state } from "./state.js";

const KEPT = 400; // recent marks kept per symbol
const PATIENCE_MS = 3000; // then the newest mark time will do
const recent = {}; // symbol -> [{time, price}], oldest first
let pending = []; // one per log entry: {account, seq, entries, marks, since, onDated}

export function notePrice(symbol, time, price) {
  const points = (recent[symbol] = recent[symbol] || []);
  points.push({ time, price });
  if (points.length > KEPT) points.shift();
  state.latestTime = Math.max(state.latestTime || 0, time);
  resolve();
}

export function awaitDate(account, entries, onDated) {
  for (const entry of entries) {
    let group = pending.find((g) => g.account === account && g.seq === entry.seq);
    if (!group) {
      group = { account, seq: entry.seq, entries: [], marks: null, since: Date.now(), onDated };
      pending.push(group);
    }
    group.entries.push(entry);
  }
  if (entries.length) setTimeout(resolve, PATIENCE_MS + 50);
}

export function noteView(account, view) {
  const marks = {};
  for (const [symbol, figures] of Object.entries(view.symbols)) if (figures.mark_price !== null) marks[symbol] = figures.mark_price;
  for (const group of pending) if (group.account === account && group.marks === null) group.marks = marks;
  resolve();
}

function latestAt(symbol, price) {
  const points = recent[symbol] || [];
  for (let i = points.length - 1; i >= 0; i -= 1) if (points[i].price === price) return points[i].time;
  return null;
}

function viewTime(group) {
  if (group.marks === null) return [null, true];
  const scoped = group.entries.map((e) => (e.event.scope || "").split(":")[1]).find(Boolean);
  let time = null;
  for (const symbol of scoped ? [scoped] : Object.keys(group.marks)) {
    if (!(symbol in group.marks)) continue;
    const at = latestAt(symbol, group.marks[symbol]);
    if (at === null) return [time, true];
    time = time === null ? at : Math.max(time, at);
  }
  return [time, false];
}

function resolve() {
  const now = Date.now();
  pending = pending.filter((group) => {
    const [time, waiting] = viewTime(group);
    if (waiting && now - group.since < PATIENCE_MS) return true;
    for (const entry of group.entries) group.onDated(entry, time ?? state.latestTime);
    return false;
  });
}
