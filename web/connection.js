// The connection: connecting over a WebSocket (reconnecting with backoff, transport.js) or
// by polling the HTTP API once a second, and what follows each (re)connection: rejoining
// the rooms an anonymous connection lost, reading the list of direct conversations and
// catching every conversation up `after` the newest message it had read. `onFrame` takes
// the frames the server pushes.

import {
  HttpTransport,
  RequestError,
  SocketTransport,
  backoffDelay,
  devToken,
  tokenClaims,
} from "./transport.js";
import { refreshConversations } from "./conversations.js";
import { $, conversationOf, request, roomKey, state } from "./state.js";
import { saveSession } from "./session.js";
import { clearAlert, setStatus, showAlert, showError } from "./alerts.js";
import {
  addSystemLine,
  catchUp,
  closeGap,
  edit,
  ensureDm,
  ensureRoom,
  merge,
  pollConversation,
  remove,
  renderConversations,
  renderLog,
} from "./view.js";
import { renderComposer } from "./composer.js";
import {
  dropConversation,
  refreshCatalog,
  refreshWho,
  refreshWhoSoon,
  renderCatalog,
  selectConversation,
} from "./rooms.js";

const POLL_MS = 1000;
/// The polling mode refreshes who is online every this many polls.
const WHO_EVERY_POLLS = 5;
/// API Gateway closes a connection idle for 10 minutes.
const KEEPALIVE_MS = 4 * 60 * 1000;

export async function connect(settings) {
  disconnect({ keepSettings: true });
  state.settings = settings;
  state.connectFailures = 0;
  state.directListed = false;
  clearAlert();
  saveSession(true);
  if (settings.mode === "polling") {
    await connectPolling(settings);
    return;
  }
  let url;
  try {
    url = new URL(settings.wsUrl);
  } catch {
    showAlert(`The WebSocket URL "${settings.wsUrl}" is not a URL.`);
    return;
  }
  if (settings.token) url.searchParams.set("token", settings.token);
  if (settings.nick) url.searchParams.set("name", settings.nick);
  state.transport = new SocketTransport(url.toString(), { onEvent: onFrame, onStatus: onSocketStatus });
  state.transport.start();
}

async function connectPolling(settings) {
  setStatus(`Signing in to ${settings.apiUrl}…`);
  try {
    let token = settings.token;
    if (token) {
      const claims = tokenClaims(token) ?? {};
      state.me = { userId: claims.sub, nick: claims.nickname ?? claims.preferred_username ?? settings.nick, roles: [] };
    } else {
      const issued = await devToken(settings.apiUrl, settings.nick);
      token = issued.token;
      state.usesDevToken = true;
      state.me = { userId: issued.userId, nick: issued.nick, roles: issued.roles };
    }
    state.transport = new HttpTransport(settings.apiUrl, token);
    await refreshCatalog();
  } catch (error) {
    state.transport = null;
    showError(error);
    setStatus("Not connected");
    saveSession(false);
    return;
  }
  showChat();
  setStatus(`Polling as ${state.me.nick} once a second (HTTP API)`);
  await resync();
  schedulePoll(POLL_MS);
}

export function disconnect({ keepSettings = false } = {}) {
  if (state.transport instanceof SocketTransport) state.transport.stop();
  state.transport = null;
  for (const name of Object.keys(state.timers)) {
    clearTimeout(state.timers[name]);
    clearInterval(state.timers[name]);
    state.timers[name] = null;
  }
  state.usesDevToken = false;
  if (!keepSettings) {
    state.conversations.clear();
    state.current = null;
    saveSession(false);
    showSignIn();
    setStatus("Not connected");
  }
}

function onSocketStatus(status) {
  const url = state.settings.wsUrl;
  switch (status.state) {
    case "connecting":
      setStatus(`Connecting to ${url}…`);
      break;
    case "open":
      state.connectFailures = 0;
      onSocketOpen().catch(showError);
      break;
    case "waiting": {
      const seconds = Math.max(1, Math.round(status.retryInMs / 1000));
      clearInterval(state.timers.keepalive);
      if (status.wasOpen) {
        setStatus(`Connection lost; reconnecting in ${seconds} s…`);
      } else {
        state.connectFailures += 1;
        setStatus(`Could not connect; retrying in ${seconds} s…`);
        // A refused handshake tells a browser nothing but that it failed: say what it
        // usually is, once it is not a passing hiccup (a reload can race its own old
        // connection for the nickname).
        if (state.connectFailures === 3) {
          showAlert(
            `Could not connect to ${url}: the nickname may be taken by another user, the server may need a token, or it is down. Still trying.`,
          );
        }
      }
      break;
    }
    case "failed":
      showAlert(status.message);
      break;
    default:
      break;
  }
}

async function onSocketOpen() {
  const whoami = await request({ action: "whoami" });
  state.me = { userId: whoami.userId, nick: whoami.nick, roles: whoami.roles };
  if (state.connectFailures === 0 && $("alert-text").textContent.startsWith("Could not connect")) clearAlert();
  showChat();
  setStatus(`Connected as ${whoami.nick} (WebSocket)`);
  // For support and tests: which connection this is (`@connections/{id}` in AWS).
  $("status").dataset.connectionId = whoami.connectionId;
  // A signed-in user's rooms follow them: those joined elsewhere are theirs here too.
  for (const room of whoami.rooms) ensureRoom(room);
  await refreshCatalog().catch(showError);
  await resync(whoami.rooms);
  clearInterval(state.timers.keepalive);
  state.timers.keepalive = setInterval(() => request({ action: "ping" }).catch(() => {}), KEEPALIVE_MS);
}

/// After (re)connecting: rejoins the rooms the connection is not in (an anonymous user's
/// membership ends with its connection), reads the list of direct conversations, then
/// catches every conversation up `after` the newest message it had read. `data-synced` on
/// the status line counts the finished ones (for tests, and support).
async function resync(memberOf = null) {
  state.syncing = true;
  try {
    for (const conversation of [...state.conversations.values()]) {
      if (conversation.kind !== "room" || conversation.passive) continue;
      if (memberOf && memberOf.includes(conversation.room)) continue;
      try {
        await request({ action: "join", room: conversation.room });
      } catch (error) {
        if (error.code === "disconnected") return;
        showError(error);
        if (error.code === "not_found" || error.code === "forbidden" || error.code === "bad_request") {
          dropConversation(conversation);
        }
      }
    }
    await refreshDirect();
    if (!state.current || !state.conversations.has(state.current)) {
      const first = state.conversations.keys().next();
      selectConversation(first.done ? null : first.value);
    }
    if (state.settings.mode === "polling") return;
    await catchUpAll();
    refreshWho();
  } finally {
    state.syncing = false;
    const status = $("status");
    status.dataset.synced = String(Number(status.dataset.synced ?? 0) + 1);
  }
}

/// Reads the list of direct conversations. The ones the page follows (read before, or
/// shown) are caught up or polled with the rest; one only listed whose last message is
/// new since the page first read the list counts as unread (one message at least) until
/// opened.
async function refreshDirect() {
  try {
    const changed = await refreshConversations(request, {
      ensure: ensureDm,
      onNewer: (conversation, last, { first }) => {
        const followed = conversation.loaded || state.current === conversation.key;
        const isNew = !first || state.directListed;
        if (!followed && isNew && last.from?.userId !== state.me?.userId) conversation.unread += 1;
      },
    });
    state.directListed = true;
    if (changed) {
      renderConversations();
      saveSession();
    }
  } catch (error) {
    if (error.code !== "disconnected") showError(error);
  }
}

async function catchUpAll() {
  for (const conversation of [...state.conversations.values()]) {
    if (conversation.passive) continue;
    // A direct conversation only listed is read when opened.
    if (conversation.kind === "dm" && !conversation.loaded && state.current !== conversation.key) continue;
    try {
      await catchUp(conversation);
    } catch (error) {
      if (error.code === "disconnected") return;
      showError(error);
    }
  }
}

function schedulePoll(delay) {
  clearTimeout(state.timers.poll);
  state.timers.poll = setTimeout(async () => {
    const transport = state.transport;
    try {
      for (const conversation of [...state.conversations.values()]) {
        // Direct conversations only listed are followed through the list below.
        const followed = conversation.kind === "room" || conversation.loaded || state.current === conversation.key;
        if (followed) await pollConversation(conversation);
      }
      await refreshDirect();
      if (state.polls % WHO_EVERY_POLLS === 0) await refreshWho();
      state.polls += 1;
      if (state.pollFailures > 0) {
        state.pollFailures = 0;
        setStatus(`Polling as ${state.me.nick} once a second (HTTP API)`);
      }
    } catch (error) {
      if (transport !== state.transport) return;
      if (error.code === "unauthorized" && state.usesDevToken) {
        // A dev token lasts 12 hours: a fresh one for the same nickname.
        const issued = await devToken(state.settings.apiUrl, state.settings.nick).catch(() => null);
        if (issued) state.transport = new HttpTransport(state.settings.apiUrl, issued.token);
      } else if (error.code === "unauthorized") {
        showError(error);
        disconnect({ keepSettings: true });
        showSignIn();
        setStatus("Not connected");
        return;
      }
      state.pollFailures += 1;
      const wait = backoffDelay(state.pollFailures);
      setStatus(`Polling failed (${error.message}); retrying in ${Math.max(1, Math.round(wait / 1000))} s…`);
      if (transport === state.transport) schedulePoll(wait);
      else schedulePoll(POLL_MS);
      return;
    }
    if (transport === state.transport) schedulePoll(POLL_MS);
  }, delay);
}

/// Frames the server pushes: messages, presence, edits, deletes, and membership changes
/// made by the user's other connections.
function onFrame(frame) {
  switch (frame.type) {
    case "message": {
      const conversation = state.conversations.get(roomKey(frame.room)) ?? ensureRoom(frame.room, true);
      merge(conversation, [frame], { live: true });
      closeGap(conversation, frame.id);
      break;
    }
    case "dm": {
      const other = frame.from.userId === state.me?.userId ? frame.to : frame.from;
      const conversation = ensureDm(other);
      merge(conversation, [frame], { live: true });
      closeGap(conversation, frame.id);
      break;
    }
    case "edited": {
      const conversation = conversationOf(frame);
      if (conversation) edit(conversation, frame.id, frame.text, frame.editedAt);
      break;
    }
    case "deleted": {
      const conversation = conversationOf(frame);
      if (conversation) remove(conversation, frame.id);
      break;
    }
    case "presence": {
      const conversation = state.conversations.get(roomKey(frame.room));
      if (!conversation) break;
      const verbs = { joined: "joined", left: "left", online: "is online", offline: "went offline" };
      addSystemLine(conversation, `${frame.user.nick} ${verbs[frame.event] ?? frame.event}`);
      if (state.current === conversation.key) refreshWhoSoon();
      break;
    }
    case "joined": {
      const conversation = ensureRoom(frame.room);
      catchUp(conversation).catch(() => {});
      break;
    }
    case "left": {
      const conversation = state.conversations.get(roomKey(frame.room));
      if (conversation) dropConversation(conversation);
      break;
    }
    case "error":
      showError(RequestError.fromFrame(frame));
      break;
    default:
      break;
  }
}

function showChat() {
  $("signin").hidden = true;
  $("chat").hidden = false;
  $("disconnect").hidden = false;
  renderConversations();
  renderCatalog();
  // A reloaded page restored the conversation it showed: show it.
  renderLog();
  renderComposer();
}

function showSignIn() {
  $("signin").hidden = false;
  $("chat").hidden = true;
  $("disconnect").hidden = true;
}
