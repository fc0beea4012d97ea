// The service's HTTP and WebSocket API, with the key from local storage.
import { state } from "./state.js";

export async function api(method, path, body) {
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

const sockets = [];

function setConnected() {
  const open = sockets.filter((s) => s.readyState === WebSocket.OPEN).length;
  document.getElementById("conn-dot").classList.toggle("on", open > 0);
}

// A stream that authenticates with its first message and reconnects unless it was refused.
export function openSocket(path, onMessage) {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const connect = () => {
    const socket = new WebSocket(scheme + location.host + path);
    socket.onopen = () => socket.send(JSON.stringify({ key: state.key }));
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "ready") setConnected();
      else onMessage(data);
    };
    socket.onclose = (event) => {
      sockets.splice(sockets.indexOf(socket), 1);
      setConnected();
      if (event.code >= 4400 && event.code < 4500) return; // refused: do not retry
      setTimeout(connect, 1500);
    };
    sockets.push(socket);
  };
  connect();
}
