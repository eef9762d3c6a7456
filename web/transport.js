// How the page talks to roomcast: over a WebSocket (client protocol v1), or over the HTTP
// API when polling. Both take a client frame (`{action, ...}`) and answer with the server
// frame the protocol gives for it, or fail with a RequestError holding the error frame, so
// that the rest of the page does not care which one it uses.

/// Longest wait for an answer: the server answers every frame, so silence means trouble.
const REQUEST_TIMEOUT_MS = 15000;
/// Reconnect delays: doubling from the first to the last, each with random jitter so that
/// many pages dropped at once do not come back at the same instant.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
/// A connection must stay open this long before the backoff starts again from the first
/// delay (a server that accepts and closes at once must not be hammered).
const BACKOFF_RESET_AFTER_MS = 5000;

/// A request the server refused or could not answer: `code` is the protocol's error code
/// (`not_member`, `too_large`, ...) or one of the page's own (`disconnected`, `timeout`,
/// `network`, `unsupported`).
export class RequestError extends Error {
  constructor(code, message, action) {
    super(message);
    this.code = code;
    this.action = action;
  }

  static fromFrame(frame) {
    return new RequestError(frame.code, frame.message, frame.action);
  }
}

/// The delay before reconnect attempt `attempt` (0 for the first).
export function backoffDelay(attempt) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}

/// Which server frame answers `frame`: the protocol has no request ids, but each answer
/// names what it answers (the room, the clientMsgId, the message id).
function answers(frame) {
  switch (frame.action) {
    case "join":
      return (reply) => reply.type === "joined" && reply.room === frame.room;
    case "leave":
      return (reply) => reply.type === "left" && reply.room === frame.room;
    case "send":
    case "dm":
      return (reply) => reply.type === "ack" && reply.clientMsgId === frame.clientMsgId;
    case "edit":
    case "delete":
      return (reply) => reply.type === "ack" && reply.id === frame.id && reply.clientMsgId === undefined;
    case "history":
      return (reply) =>
        reply.type === "history" && (frame.room ? reply.room === frame.room : reply.with === frame.with);
    case "rooms":
      return (reply) => reply.type === "rooms";
    case "conversations":
      return (reply) => reply.type === "conversations";
    case "createRoom":
      return (reply) => reply.type === "roomCreated" && reply.room === frame.room;
    case "who":
      return (reply) => reply.type === "who" && reply.room === frame.room;
    case "upload":
      return (reply) => reply.type === "upload";
    case "whoami":
      return (reply) => reply.type === "whoami";
    case "ping":
      return (reply) => reply.type === "pong";
    default:
      return () => false;
  }
}

/// API Gateway's largest WebSocket frame: a larger one ends the connection.
export const MAX_FRAME_BYTES = 32 * 1024;

/// A WebSocket to roomcast that reconnects with backoff until stopped.
///
/// Requests go one at a time: API Gateway may answer two frames of one connection in
/// either order, and an error frame names only its action, so one request in flight is
/// what lets an error be matched to the request that caused it. Frames that answer no
/// request (messages, presence, edits, ...) go to `onEvent`.
export class SocketTransport {
  constructor(url, { onEvent, onStatus }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.socket = null;
    this.queue = [];
    this.inFlight = null;
    this.attempt = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.openedAt = 0;
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.socket) {
      this.socket.close(1000, "bye");
      this.socket = null;
    }
    this.failAll(new RequestError("disconnected", "disconnected"));
  }

  /// Sends `frame` once the ones before it are answered; resolves with its answer.
  request(frame) {
    if (!this.isOpen) {
      return Promise.reject(new RequestError("disconnected", "not connected: reconnecting", frame.action));
    }
    const bytes = new TextEncoder().encode(JSON.stringify(frame)).length;
    if (bytes > MAX_FRAME_BYTES) {
      // Sent, it would close the connection: refuse it here, as the server would.
      return Promise.reject(
        new RequestError("too_large", `the frame is ${bytes} bytes; a WebSocket frame is at most ${MAX_FRAME_BYTES}`, frame.action),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ frame, matches: answers(frame), resolve, reject });
      this.pump();
    });
  }

  connect() {
    this.onStatus({ state: "connecting", attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this.onStatus({ state: "failed", message: `bad WebSocket URL: ${error.message}` });
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.openedAt = Date.now();
      this.onStatus({ state: "open" });
    };
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      const wasOpen = this.openedAt !== 0;
      if (wasOpen && Date.now() - this.openedAt >= BACKOFF_RESET_AFTER_MS) this.attempt = 0;
      this.openedAt = 0;
      this.failAll(new RequestError("disconnected", "the connection was lost; reconnecting"));
      if (this.stopped) return;
      const delay = backoffDelay(this.attempt++);
      this.onStatus({ state: "waiting", retryInMs: delay, wasOpen, code: event.code });
      this.retryTimer = setTimeout(() => this.connect(), delay);
    };
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // the protocol only sends JSON objects; ignore anything else
    }
    if (frame === null || typeof frame !== "object") return;
    const pending = this.inFlight;
    // An error answers the request in flight: errors are only ever replies, and one too
    // large to parse names no action.
    const isError = frame.type === "error" && (frame.action === undefined || frame.action === pending?.frame.action);
    if (pending && (pending.matches(frame) || isError)) {
      clearTimeout(pending.timer);
      this.inFlight = null;
      if (frame.type === "error") pending.reject(RequestError.fromFrame(frame));
      else pending.resolve(frame);
      this.pump();
      return;
    }
    this.onEvent(frame);
  }

  pump() {
    if (this.inFlight || this.queue.length === 0 || !this.isOpen) return;
    const pending = this.queue.shift();
    this.inFlight = pending;
    pending.timer = setTimeout(() => {
      if (this.inFlight !== pending) return;
      this.inFlight = null;
      pending.reject(new RequestError("timeout", "the server did not answer", pending.frame.action));
      this.pump();
    }, REQUEST_TIMEOUT_MS);
    this.socket.send(JSON.stringify(pending.frame));
  }

  failAll(error) {
    const pending = this.inFlight ? [this.inFlight, ...this.queue] : this.queue;
    this.inFlight = null;
    this.queue = [];
    for (const request of pending) {
      clearTimeout(request.timer);
      request.reject(new RequestError(error.code, error.message, request.frame.action));
    }
  }
}

/// The HTTP API (`/api/...`) with a bearer token. Its answers are the protocol's frames, so
/// each client frame maps to one request; actions the HTTP API does not have fail with
/// `unsupported`.
export class HttpTransport {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
  }

  request(frame) {
    const room = frame.room === undefined ? "" : encodeURIComponent(frame.room);
    switch (frame.action) {
      case "rooms":
        return this.call(frame, "GET", "/api/rooms");
      case "createRoom":
        return this.call(frame, "POST", "/api/rooms", { room: frame.room });
      case "join":
        return this.call(frame, "PUT", `/api/rooms/${room}/members/me`);
      case "leave":
        return this.call(frame, "DELETE", `/api/rooms/${room}/members/me`);
      case "who":
        return this.call(frame, "GET", `/api/rooms/${room}/who`);
      case "send": {
        const body = { text: frame.text, clientMsgId: frame.clientMsgId };
        if (frame.replyTo) body.replyTo = frame.replyTo;
        if (frame.files) body.files = frame.files;
        return this.call(frame, "POST", `/api/rooms/${room}/messages`, body);
      }
      case "history":
        return this.call(frame, "GET", `${messages(frame)}${search(frame, ["before", "after", "limit"])}`);
      case "dm": {
        if (frame.toUser === undefined) break; // the HTTP API names the recipient by user id
        const body = { text: frame.text, clientMsgId: frame.clientMsgId };
        if (frame.replyTo) body.replyTo = frame.replyTo;
        if (frame.files) body.files = frame.files;
        return this.call(frame, "POST", `/api/users/${encodeURIComponent(frame.toUser)}/messages`, body);
      }
      case "upload": {
        const body = { name: frame.name, contentType: frame.contentType, size: frame.size };
        const where = frame.room !== undefined
          ? `/api/rooms/${encodeURIComponent(frame.room)}`
          : `/api/users/${encodeURIComponent(frame.with)}`;
        return this.call(frame, "POST", `${where}/files`, body);
      }
      case "edit":
        return this.call(frame, "PATCH", `${messages(frame)}/${encodeURIComponent(frame.id)}`, { text: frame.text });
      case "delete":
        return this.call(frame, "DELETE", `${messages(frame)}/${encodeURIComponent(frame.id)}`);
      case "conversations":
        return this.call(frame, "GET", `/api/conversations${search(frame, ["before", "limit"])}`);
      default:
        break;
    }
    return Promise.reject(
      new RequestError("unsupported", "the polling mode cannot do this: switch to the WebSocket mode", frame.action),
    );
  }

  async call(frame, method, path, body) {
    const headers = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (error) {
      const timedOut = error.name === "TimeoutError";
      throw new RequestError(
        timedOut ? "timeout" : "network",
        timedOut ? "the server did not answer" : "the server cannot be reached",
        frame.action,
      );
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch {
      // API Gateway's own errors are JSON too; anything else is reported by its status.
    }
    if (answer && answer.type && answer.type !== "error" && response.ok) return answer;
    if (answer && answer.type === "error") throw RequestError.fromFrame({ ...answer, action: frame.action });
    // API Gateway answered without invoking the function: {"message": "Unauthorized"}.
    const code = response.status === 401 ? "unauthorized" : response.status >= 500 ? "unavailable" : "bad_request";
    const message = (answer && answer.message) || `HTTP ${response.status}`;
    throw new RequestError(code, message, frame.action);
  }
}

/// The messages of the room or direct conversation a frame names (`room` or `with`).
function messages(frame) {
  return frame.room !== undefined
    ? `/api/rooms/${encodeURIComponent(frame.room)}/messages`
    : `/api/users/${encodeURIComponent(frame.with)}/messages`;
}

/// The query string of the fields `names` that `frame` has ("" when none).
function search(frame, names) {
  const query = new URLSearchParams();
  for (const name of names) {
    if (frame[name] !== undefined) query.set(name, String(frame[name]));
  }
  return query.size ? `?${query}` : "";
}

/// A token from the local gateway's `POST /api/dev/token` (offered only when it has no
/// identity provider configured): `{token, userId, nick, roles, expiresIn}`.
export async function devToken(baseUrl, nick) {
  let response;
  try {
    response = await fetch(`${baseUrl.replace(/\/+$/, "")}/api/dev/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ nick }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch {
    throw new RequestError("network", `the HTTP API at ${baseUrl} cannot be reached`, "signIn");
  }
  const answer = await response.json().catch(() => null);
  if (response.ok && answer && answer.token) return answer;
  if (response.status === 404) {
    throw new RequestError(
      "unauthorized",
      "this server signs no tokens for you: the polling mode needs a token from your identity provider",
      "signIn",
    );
  }
  throw new RequestError((answer && answer.code) || "bad_request", (answer && answer.message) || `HTTP ${response.status}`, "signIn");
}

/// The claims of a JWT, read without checking it (the server checks it): only to show who
/// the page signed in as.
export function tokenClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(payload), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    );
    return JSON.parse(json);
  } catch {
    return null;
  }
}
