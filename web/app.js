// roomcast's chat page: sign in, rooms, messages, presence, direct messages, history,
// replies, edits and deletes, over a WebSocket or by polling the HTTP API once a second.
// Plain DOM, no build step. What it keeps in sessionStorage (the settings, the
// conversations and the newest message seen in each) lets a reloaded page catch up.

import {
  HttpTransport,
  RequestError,
  SocketTransport,
  backoffDelay,
  devToken,
  tokenClaims,
} from "./transport.js";
import { notePreview, previewDeleted, previewEdited, refreshConversations, renderDirectList } from "./conversations.js";
import { PAGE_SIZE, historyReader, target } from "./history.js";
import { filesElement, formatSize, upload } from "./files.js";

const SESSION_KEY = "roomcast.session";
const POLL_MS = 1000;
/// The polling mode refreshes who is online every this many polls.
const WHO_EVERY_POLLS = 5;
/// API Gateway closes a connection idle for 10 minutes.
const KEEPALIVE_MS = 4 * 60 * 1000;
const NICK = /^[A-Za-z0-9_.-]{1,32}$/;

const $ = (id) => document.getElementById(id);

// Reading the history in each conversation's order (history.js); `request`, `merge` and
// `renderOlderButton` are below.
const {
  catchUp,
  closeGap,
  poll: pollConversation,
} = historyReader({ request, merge, onLoaded: () => renderOlderButton() });

const state = {
  settings: null, // {nick, token, mode, wsUrl, apiUrl}
  transport: null,
  me: null, // {userId, nick, roles}
  usesDevToken: false,
  catalog: [],
  conversations: new Map(), // key → conversation
  current: null, // key of the conversation shown
  composer: { replyTo: null, editing: null },
  attachments: [], // files uploaded for the next message: {id, name, contentType, size, url?}
  uploading: 0, // uploads under way
  timers: { poll: null, keepalive: null },
  polls: 0,
  pollFailures: 0,
  connectFailures: 0,
  syncing: false,
  directListed: false, // the list of direct conversations was read since connect()
  systemSeq: 0,
};

// ---------------------------------------------------------------------------------------
// Conversations: a room or a direct conversation, with its messages kept by id.

function roomKey(room) {
  return `room:${room}`;
}

function dmKey(userId) {
  return `dm:${userId}`;
}

function newConversation(fields) {
  return {
    messages: new Map(), // sort key → entry (messages, pending sends, presence lines)
    loaded: false, // the latest page was read
    moreOlder: false,
    // The newest message id read in the conversation's order (history pages, live frames):
    // catching up `after` it gives exactly what followed. An ack does not move it, as
    // messages before the acknowledged one may not have reached the page yet.
    lastId: null,
    newestId: null, // the newest message id the page holds, acks included
    preview: null, // a direct conversation's last message, for the list (conversations.js)
    gapFrom: null, // where the last catch-up's reading ended, until a live message confirms it
    closingGap: false,
    openedAt: Date.now(),
    unread: 0,
    passive: false, // a room we hear from without being a member (the broadcast room)
    ...fields,
  };
}

function ensureRoom(room, passive = false) {
  const key = roomKey(room);
  let conversation = state.conversations.get(key);
  if (!conversation) {
    conversation = newConversation({ key, kind: "room", room, title: `#${room}`, passive });
    state.conversations.set(key, conversation);
    renderConversations();
    saveSession();
  } else if (!passive && conversation.passive) {
    conversation.passive = false;
  }
  return conversation;
}

function ensureDm(user) {
  const key = dmKey(user.userId);
  let conversation = state.conversations.get(key);
  if (!conversation) {
    conversation = newConversation({ key, kind: "dm", with: user.userId, title: `@${user.nick}` });
    state.conversations.set(key, conversation);
    renderConversations();
    saveSession();
  }
  return conversation;
}

function conversationOf(frame) {
  if (frame.room !== undefined) return state.conversations.get(roomKey(frame.room));
  if (frame.with !== undefined) return state.conversations.get(dmKey(frame.with));
  return undefined;
}

/// Adds or updates messages (from the history, a live frame or an ack). `live` counts them
/// as unread when their conversation is not shown; `ordered: false` (an ack) leaves the
/// catch-up point where it is.
function merge(conversation, entries, { live = false, ordered = true } = {}) {
  for (const entry of entries) {
    const known = conversation.messages.get(entry.id);
    let message;
    if (entry.deleted && entry.from === undefined) {
      message = known ? { ...known, deleted: true } : { kind: "message", id: entry.id, deleted: true };
    } else {
      message = {
        kind: "message",
        id: entry.id,
        from: entry.from,
        to: entry.to,
        text: entry.text,
        ts: entry.ts,
        replyTo: entry.replyTo,
        // A frame's urls are fresher than the ones kept (each is signed when it is made).
        files: entry.files ?? known?.files,
        editedAt: entry.editedAt ?? known?.editedAt,
        deleted: known?.deleted ?? false,
      };
    }
    conversation.messages.set(entry.id, message);
    if (ordered && (!conversation.lastId || entry.id > conversation.lastId)) conversation.lastId = entry.id;
    if (!conversation.newestId || entry.id > conversation.newestId) conversation.newestId = entry.id;
    if (conversation.kind === "dm") notePreview(conversation, message);
    if (live && !known && state.current !== conversation.key && entry.from?.userId !== state.me?.userId) {
      conversation.unread += 1;
    }
    if (state.current === conversation.key) renderEntry(message);
  }
  if (entries.length) {
    renderConversations();
    saveSession();
  }
}

function edit(conversation, id, text, editedAt) {
  if (previewEdited(conversation, id, text)) renderConversations();
  const message = conversation.messages.get(id);
  if (!message) return;
  message.text = text;
  message.editedAt = editedAt;
  if (state.current === conversation.key) renderEntry(message);
}

function remove(conversation, id) {
  if (previewDeleted(conversation, id)) renderConversations();
  const message = conversation.messages.get(id);
  if (!message) return;
  message.deleted = true;
  if (state.current === conversation.key) renderEntry(message);
}

/// A line such as "bob joined", placed after the newest message the page holds (its key
/// sorts after that id and before every later one).
function addSystemLine(conversation, text) {
  state.systemSeq += 1;
  const key = `${conversation.newestId ?? "0"}~${String(state.systemSeq).padStart(8, "0")}`;
  const line = { kind: "system", id: key, text };
  conversation.messages.set(key, line);
  if (state.current === conversation.key) renderEntry(line);
}

// ---------------------------------------------------------------------------------------
// Talking to the server

function request(frame) {
  if (!state.transport) return Promise.reject(new RequestError("disconnected", "not connected", frame.action));
  return state.transport.request(frame);
}

async function connect(settings) {
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

function disconnect({ keepSettings = false } = {}) {
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

async function refreshCatalog() {
  const answer = await request({ action: "rooms" });
  state.catalog = answer.rooms.map((room) => room.name).sort();
  renderCatalog();
}

async function refreshWho() {
  const conversation = state.conversations.get(state.current);
  if (!conversation || conversation.kind !== "room" || conversation.passive) {
    renderPeople(null);
    return;
  }
  try {
    const answer = await request({ action: "who", room: conversation.room });
    if (state.current === conversation.key) renderPeople(answer);
  } catch (error) {
    if (error.code !== "disconnected") showError(error);
  }
}

let whoTimer = null;
function refreshWhoSoon() {
  clearTimeout(whoTimer);
  whoTimer = setTimeout(refreshWho, 300);
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

// ---------------------------------------------------------------------------------------
// What the user does

async function joinRoom(room) {
  const existing = state.conversations.get(roomKey(room));
  if (existing && !existing.passive) {
    selectConversation(existing.key);
    return;
  }
  try {
    await request({ action: "join", room });
  } catch (error) {
    if (error.code !== "not_found") throw error;
    // A room nobody made yet is made by joining it. If someone else made it meanwhile,
    // it exists all the same.
    try {
      await request({ action: "createRoom", room });
    } catch (createError) {
      if (createError.code !== "conflict") throw createError;
    }
    await request({ action: "join", room });
    refreshCatalog().catch(() => {});
  }
  const conversation = ensureRoom(room);
  selectConversation(conversation.key);
  if (state.settings.mode === "polling") await pollConversation(conversation);
  else await catchUp(conversation);
}

async function leaveRoom(conversation) {
  await request({ action: "leave", room: conversation.room });
  dropConversation(conversation);
}

function dropConversation(conversation) {
  state.conversations.delete(conversation.key);
  if (state.current === conversation.key) {
    const next = state.conversations.keys().next();
    selectConversation(next.done ? null : next.value);
  }
  renderConversations();
  saveSession();
}

async function submitMessage() {
  const input = $("message");
  const conversation = state.conversations.get(state.current);
  if (!conversation || state.uploading > 0) return;
  const files = state.composer.editing ? [] : state.attachments;
  // A message needs a text: files alone are sent under their names.
  const text = input.value.trim() === "" && files.length ? files.map((file) => file.name).join(", ") : input.value;
  if (text.trim() === "") return;
  const { replyTo, editing } = state.composer;
  input.value = "";
  setComposerContext(null);
  try {
    if (editing) {
      const ack = await request({ action: "edit", ...target(conversation), id: editing, text });
      edit(conversation, editing, text, ack.ts);
      return;
    }
    const clientMsgId = crypto.randomUUID();
    const pending = { kind: "pending", id: `~${clientMsgId}`, text, from: state.me };
    conversation.messages.set(pending.id, pending);
    if (state.current === conversation.key) renderEntry(pending);
    const frame =
      conversation.kind === "room"
        ? { action: "send", room: conversation.room, text, clientMsgId }
        : { action: "dm", toUser: conversation.with, text, clientMsgId };
    if (replyTo) frame.replyTo = replyTo;
    if (files.length) frame.files = files.map((file) => file.id);
    try {
      const ack = await request(frame);
      forget(conversation, pending.id);
      setAttachments([]);
      const entry = { id: ack.id, from: state.me, to: ack.to, text, ts: ack.ts, replyTo, files: files.length ? files : undefined };
      merge(conversation, [entry], { ordered: false });
    } catch (error) {
      forget(conversation, pending.id);
      throw error;
    }
  } catch (error) {
    // Nothing was sent: give the text back, and the reply or edit it was.
    if (input.value === "") input.value = text;
    if (editing) setComposerContext({ editing });
    else if (replyTo) setComposerContext({ replyTo });
    showError(error);
  }
}

/// The files uploaded for the next message, shown above the composer.
function setAttachments(files) {
  state.attachments = files;
  const list = $("attachments");
  list.replaceChildren(
    ...files.map((file) => {
      const item = document.createElement("li");
      item.textContent = `${file.name} (${formatSize(file.size)})`;
      return item;
    }),
  );
  list.hidden = files.length === 0;
}

/// Uploads the files chosen for the current conversation, one after the other, with
/// their progress; each becomes an attachment of the next message.
async function attachFiles(chosen) {
  const conversation = state.conversations.get(state.current);
  if (!conversation || chosen.length === 0) return;
  const progress = $("upload-progress");
  // The status line says what the connection is; the uploads borrow it for a while.
  const status = $("status").textContent;
  state.uploading += 1;
  renderComposer();
  try {
    for (const [i, file] of chosen.entries()) {
      progress.hidden = false;
      progress.value = 0;
      setStatus(`Uploading ${file.name} (${i + 1} of ${chosen.length})…`);
      const attachment = await upload(request, target(conversation), file, (fraction) => {
        progress.value = fraction;
      });
      setAttachments([...state.attachments, attachment]);
    }
  } catch (error) {
    showError(error);
  } finally {
    state.uploading -= 1;
    progress.hidden = true;
    renderComposer();
    setStatus(status);
  }
}

function forget(conversation, key) {
  conversation.messages.delete(key);
  $("log")
    .querySelector(`li[data-key="${CSS.escape(key)}"]`)
    ?.remove();
}

async function deleteMessage(conversation, id) {
  await request({ action: "delete", ...target(conversation), id });
  remove(conversation, id);
}

// ---------------------------------------------------------------------------------------
// Rendering

function setStatus(text) {
  $("status").textContent = text;
}

const ACTIONS = {
  send: "send the message",
  dm: "send the direct message",
  edit: "edit the message",
  delete: "delete the message",
  join: "join the room",
  leave: "leave the room",
  createRoom: "create the room",
  history: "load the messages",
  conversations: "list your conversations",
  who: "list who is online",
  rooms: "list the rooms",
  whoami: "read who you are",
  signIn: "sign in",
};

const CODES = {
  bad_request: "the server refused it",
  unknown_action: "the server does not know this action",
  not_member: "you are not a member of this room",
  forbidden: "you are not allowed to",
  not_found: "it does not exist",
  too_large: "it is too long",
  conflict: "it is already taken",
  rate_limited: "too many requests, slow down",
  unavailable: "the service is unavailable right now; try again",
  unauthorized: "your sign-in was refused",
  disconnected: "not connected",
  timeout: "the server did not answer",
  network: "the server cannot be reached",
  unsupported: "the polling mode cannot do this",
};

function showError(error) {
  if (!(error instanceof RequestError)) {
    console.error(error);
    showAlert(`Something went wrong: ${error.message ?? error}`);
    return;
  }
  const what = ACTIONS[error.action] ?? (error.action ? `do “${error.action}”` : "do that");
  const why = CODES[error.code] ?? error.code;
  showAlert(`Could not ${what}: ${why} (${error.message}).`);
}

function showAlert(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
}

function clearAlert() {
  $("alert-text").textContent = "";
  $("alert").hidden = true;
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

function selectConversation(key) {
  state.current = key;
  const conversation = key ? state.conversations.get(key) : null;
  if (conversation) conversation.unread = 0;
  setComposerContext(null);
  renderConversations();
  renderLog();
  renderComposer();
  saveSession();
  refreshWho();
}

function renderConversations() {
  renderDirectList($("direct"), [...state.conversations.values()], {
    current: state.current,
    me: state.me,
    onOpen: (conversation) => openConversation(conversation).catch(showError),
  });
  const list = $("conversations");
  list.replaceChildren();
  for (const conversation of state.conversations.values()) {
    if (conversation.kind !== "room") continue;
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = conversation.title;
    if (conversation.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = ` ${conversation.unread} new`;
      button.append(badge);
    }
    if (conversation.key === state.current) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => selectConversation(conversation.key));
    item.append(button);
    list.append(item);
  }
}

function renderCatalog() {
  const list = $("catalog");
  const names = $("catalog-names");
  list.replaceChildren();
  names.replaceChildren();
  for (const room of state.catalog) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    button.textContent = room;
    button.setAttribute("aria-label", `Join room ${room}`);
    button.addEventListener("click", () => joinRoom(room).catch(showError));
    item.append(button);
    list.append(item);
    const option = document.createElement("option");
    option.value = room;
    names.append(option);
  }
}

function renderPeople(who) {
  const list = $("people");
  list.replaceChildren();
  $("people-note").textContent = "";
  if (!who) return;
  for (const user of who.users) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = user.userId === state.me?.userId ? `${user.nick} (you)` : user.nick;
    item.append(name);
    if (user.connections > 1) {
      const devices = document.createElement("span");
      devices.className = "muted";
      devices.textContent = ` · ${user.connections} connections`;
      item.append(devices);
    }
    if (user.userId !== state.me?.userId) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "small";
      button.textContent = "Message";
      button.setAttribute("aria-label", `Direct message ${user.nick}`);
      button.addEventListener("click", () => openDm(user).catch(showError));
      item.append(" ", button);
    }
    list.append(item);
  }
  if (who.more) $("people-note").textContent = "More are online than listed.";
}

async function openDm(user) {
  await openConversation(ensureDm(user));
}

/// Shows a direct conversation, read from its history the first time.
async function openConversation(conversation) {
  selectConversation(conversation.key);
  if (conversation.loaded) return;
  if (state.settings.mode === "polling") await pollConversation(conversation);
  else await catchUp(conversation);
}

function renderLog() {
  const log = $("log");
  log.replaceChildren();
  const conversation = state.conversations.get(state.current);
  $("conversation-title").textContent = conversation ? conversation.title : "No conversation";
  $("leave").hidden = !conversation || conversation.kind !== "room" || conversation.passive;
  renderOlderButton();
  if (!conversation) return;
  const keys = [...conversation.messages.keys()].sort();
  for (const key of keys) log.append(entryElement(conversation.messages.get(key)));
  log.scrollTop = log.scrollHeight;
}

function renderOlderButton() {
  const conversation = state.conversations.get(state.current);
  $("older").hidden = !conversation || !conversation.moreOlder;
}

/// Puts one entry of the shown conversation in place (by its key, which sorts in the
/// conversation's order), or updates it where it is.
function renderEntry(entry) {
  const log = $("log");
  const element = entryElement(entry);
  const existing = log.querySelector(`li[data-key="${CSS.escape(entry.id)}"]`);
  if (existing) {
    existing.replaceWith(element);
    return;
  }
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  let before = null;
  for (let node = log.lastElementChild; node; node = node.previousElementSibling) {
    if (node.dataset.key > entry.id) before = node;
    else break;
  }
  log.insertBefore(element, before);
  if (atBottom && before === null) log.scrollTop = log.scrollHeight;
}

function entryElement(entry) {
  const item = document.createElement("li");
  item.dataset.key = entry.id;
  if (entry.kind === "system") {
    item.className = "system";
    item.textContent = entry.text;
    return item;
  }
  const mine = entry.from && entry.from.userId === state.me?.userId;
  item.className = `message${mine ? " mine" : ""}${entry.deleted ? " deleted" : ""}${entry.kind === "pending" ? " pending" : ""}`;
  const meta = document.createElement("div");
  meta.className = "meta";
  // A deleted message read from the history has lost its author too.
  if (entry.from) {
    const nick = document.createElement("strong");
    nick.className = "nick";
    nick.textContent = entry.from.nick;
    meta.append(nick);
  }
  if (entry.ts) {
    const time = document.createElement("time");
    const date = new Date(entry.ts);
    time.dateTime = date.toISOString();
    time.textContent = ` ${date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
    meta.append(time);
  }
  if (entry.editedAt && !entry.deleted) {
    const edited = document.createElement("span");
    edited.className = "edited";
    edited.textContent = " (edited)";
    meta.append(edited);
  }
  if (entry.kind === "pending") {
    const sending = document.createElement("span");
    sending.className = "muted";
    sending.textContent = " sending…";
    meta.append(sending);
  }
  item.append(meta);
  if (entry.replyTo && !entry.deleted) {
    const conversation = state.conversations.get(state.current);
    const original = conversation?.messages.get(entry.replyTo);
    const quote = document.createElement("div");
    quote.className = "quote";
    quote.textContent =
      original && !original.deleted && original.text !== undefined
        ? `↪ ${original.from?.nick ?? "someone"}: ${excerpt(original.text)}`
        : "↪ an earlier message";
    item.append(quote);
  }
  const text = document.createElement("p");
  text.className = "text";
  text.textContent = entry.deleted ? "This message was deleted." : entry.text;
  item.append(text);
  if (entry.files?.length && !entry.deleted) item.append(filesElement(entry.files));
  if (entry.kind === "message" && !entry.deleted) item.append(actions(entry, mine));
  return item;
}

function actions(entry, mine) {
  const bar = document.createElement("div");
  bar.className = "actions";
  const button = (label, action) => {
    const element = document.createElement("button");
    element.type = "button";
    element.className = "small";
    element.textContent = label;
    element.dataset.action = action;
    element.dataset.id = entry.id;
    bar.append(element);
  };
  button("Reply", "reply");
  if (mine) button("Edit", "edit");
  if (mine || state.me?.roles?.includes("admin")) button("Delete", "delete");
  return bar;
}

function excerpt(text) {
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function renderComposer() {
  const conversation = state.conversations.get(state.current);
  const enabled = Boolean(conversation) && !(conversation.passive && conversation.kind === "room");
  $("message").disabled = !enabled;
  $("send").disabled = !enabled || state.uploading > 0;
  $("attach").disabled = !enabled || state.uploading > 0;
}

function setComposerContext(context) {
  state.composer = { replyTo: context?.replyTo ?? null, editing: context?.editing ?? null };
  const conversation = state.conversations.get(state.current);
  const id = state.composer.replyTo ?? state.composer.editing;
  const message = id && conversation ? conversation.messages.get(id) : null;
  if (!message) {
    state.composer = { replyTo: null, editing: null };
    $("context").hidden = true;
    return;
  }
  $("context-text").textContent = state.composer.editing
    ? "Editing your message"
    : `Replying to ${message.from?.nick ?? "someone"}: ${excerpt(message.text ?? "")}`;
  $("context").hidden = false;
}

// ---------------------------------------------------------------------------------------
// The session: what a reload needs to pick up where it was.

function saveSession(connected) {
  const saved = readSession();
  const session = {
    settings: state.settings ?? saved.settings,
    connected: connected ?? saved.connected ?? false,
    current: state.current,
    conversations: [...state.conversations.values()].map((conversation) => ({
      key: conversation.key,
      kind: conversation.kind,
      room: conversation.room,
      with: conversation.with,
      title: conversation.title,
      passive: conversation.passive,
      lastId: conversation.lastId,
    })),
  };
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // Storage full or disabled: a reload then starts afresh.
  }
}

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "{}") ?? {};
  } catch {
    return {};
  }
}

function restoreConversations(saved) {
  for (const entry of saved.conversations ?? []) {
    if (entry.kind !== "room" && entry.kind !== "dm") continue;
    state.conversations.set(
      entry.key,
      newConversation({
        key: entry.key,
        kind: entry.kind,
        room: entry.room,
        with: entry.with,
        title: entry.title,
        passive: entry.passive,
        lastId: entry.lastId ?? null,
      }),
    );
  }
  state.current = saved.current ?? null;
}

/// Where the servers are: `?ws=` and `?api=` (a deployed stack's WebSocketUrl and
/// HttpApiUrl), else the saved ones, else this page's own origin (the local gateway).
function defaultUrls(saved) {
  const params = new URLSearchParams(location.search);
  const sameOrigin = location.protocol === "http:" || location.protocol === "https:";
  const wsOrigin = sameOrigin ? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/` : "";
  return {
    wsUrl: params.get("ws") ?? saved?.wsUrl ?? wsOrigin,
    apiUrl: params.get("api") ?? saved?.apiUrl ?? (sameOrigin ? location.origin : ""),
  };
}

/// A URL as the browser would write it, so that `ws://h:1` and `ws://h:1/` are one server.
function sameServer(a, b) {
  const normal = (url) => {
    try {
      return new URL(url).href;
    } catch {
      return url ?? "";
    }
  };
  return normal(a) === normal(b);
}

/// The servers `?ws=`/`?api=` name that differ from the ones a token was saved for.
function otherServers(saved) {
  const params = new URLSearchParams(location.search);
  const other = {};
  for (const [param, key] of [
    ["ws", "wsUrl"],
    ["api", "apiUrl"],
  ]) {
    const named = params.get(param);
    if (named !== null && !sameServer(named, saved[key])) other[key] = named;
  }
  return Object.keys(other).length ? other : null;
}

/// A link may name other servers than the ones the saved token is for (a link anyone can
/// send): the token is never sent there unasked. The user confirms the switch, and then
/// signs in afresh there (the token and the conversations of the old server are dropped);
/// or stays, and the link's servers are forgotten. Returns the session to start from.
function guardSavedToken(saved) {
  const other = saved.settings?.token ? otherServers(saved.settings) : null;
  if (!other) return saved;
  const named = Object.values(other).join(" and ");
  const kept = [saved.settings.wsUrl, saved.settings.apiUrl].filter(Boolean).join(" and ");
  const switching = window.confirm(
    `This link names another server: ${named}.\n\nYou are signed in with a token on ${kept}; ` +
      "it will not be sent to the new server. Switch and sign in there afresh?",
  );
  const params = new URLSearchParams(location.search);
  params.delete("ws");
  params.delete("api");
  const query = params.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
  if (!switching) return saved;
  const session = { settings: { ...saved.settings, ...other, token: "" }, connected: false, conversations: [] };
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  } catch {
    // Storage disabled: the token stays out of the form all the same.
  }
  $("server").open = true;
  return session;
}

function readForm() {
  const form = $("signin-form");
  return {
    nick: form.nick.value.trim(),
    token: form.token.value.trim(),
    mode: form.mode.value,
    wsUrl: form.ws.value.trim(),
    apiUrl: form.api.value.trim(),
  };
}

function validate(settings) {
  if (settings.nick && !NICK.test(settings.nick)) {
    return "A nickname is 1–32 letters, digits, _, . or -.";
  }
  if (!settings.nick && !settings.token) return "Choose a nickname (or give a token).";
  if (settings.mode === "polling" && !settings.apiUrl) return "The polling mode needs the HTTP API URL (under Server).";
  if (settings.mode === "websocket" && !settings.wsUrl) return "The WebSocket mode needs the WebSocket URL (under Server).";
  return null;
}

// ---------------------------------------------------------------------------------------
// Wiring

function start() {
  const saved = guardSavedToken(readSession());
  const urls = defaultUrls(saved.settings);
  const form = $("signin-form");
  form.nick.value = saved.settings?.nick ?? new URLSearchParams(location.search).get("nick") ?? "";
  form.token.value = saved.settings?.token ?? "";
  form.mode.value = saved.settings?.mode ?? "websocket";
  form.ws.value = urls.wsUrl;
  form.api.value = urls.apiUrl;
  // A link that names the servers shows them: a token typed here goes there.
  const named = new URLSearchParams(location.search);
  if (!urls.wsUrl || !urls.apiUrl || named.has("ws") || named.has("api")) $("server").open = true;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const settings = readForm();
    const problem = validate(settings);
    if (problem) {
      showAlert(problem);
      return;
    }
    state.conversations.clear();
    state.current = null;
    connect(settings).catch(showError);
  });
  $("disconnect").addEventListener("click", () => disconnect());
  $("alert-dismiss").addEventListener("click", clearAlert);
  $("refresh-rooms").addEventListener("click", () => refreshCatalog().catch(showError));
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const room = $("room").value.trim();
    if (!room) return;
    joinRoom(room)
      .then(() => {
        $("room").value = "";
      })
      .catch(showError);
  });
  $("leave").addEventListener("click", () => {
    const conversation = state.conversations.get(state.current);
    if (conversation) leaveRoom(conversation).catch(showError);
  });
  $("older").addEventListener("click", () => loadOlder().catch(showError));
  $("attach").addEventListener("click", () => $("attach-input").click());
  $("attach-input").addEventListener("change", (event) => {
    const chosen = [...event.target.files];
    event.target.value = "";
    attachFiles(chosen);
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submitMessage();
  });
  $("context-cancel").addEventListener("click", () => {
    if (state.composer.editing) $("message").value = "";
    setComposerContext(null);
  });
  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("context").hidden) $("context-cancel").click();
  });
  $("log").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const conversation = state.conversations.get(state.current);
    if (!button || !conversation) return;
    const { action, id } = button.dataset;
    if (action === "reply") {
      setComposerContext({ replyTo: id });
      $("message").focus();
    } else if (action === "edit") {
      setComposerContext({ editing: id });
      $("message").value = conversation.messages.get(id)?.text ?? "";
      $("message").focus();
    } else if (action === "delete") {
      deleteMessage(conversation, id).catch(showError);
    }
  });

  if (saved.connected && saved.settings) {
    // A reload: connect again, rejoin, and catch up from the newest message seen.
    restoreConversations(saved);
    connect({ ...saved.settings, ...urls }).catch(showError);
  }
}

async function loadOlder() {
  const conversation = state.conversations.get(state.current);
  if (!conversation) return;
  const oldest = [...conversation.messages.values()]
    .filter((entry) => entry.kind === "message")
    .map((entry) => entry.id)
    .sort()[0];
  const frame = { action: "history", ...target(conversation), limit: PAGE_SIZE };
  if (oldest) frame.before = oldest;
  const log = $("log");
  const fromBottom = log.scrollHeight - log.scrollTop;
  const page = await request(frame);
  conversation.moreOlder = page.more;
  merge(conversation, page.messages);
  log.scrollTop = log.scrollHeight - fromBottom;
  renderOlderButton();
}

start();
