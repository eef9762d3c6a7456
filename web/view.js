// The conversation view: what the page holds of each conversation and how the log shows
// it. History pages, live frames and acks all arrive through `merge` (and `edit`,
// `remove`, presence lines), each entry in the conversation's order; the log draws the
// conversation shown and puts each new entry in its place. The lists of the user's
// conversations are drawn here too, as every change of a conversation redraws them.

import { notePreview, previewDeleted, previewEdited, renderDirectList } from "./conversations.js";
import { PAGE_SIZE, historyReader, target } from "./history.js";
import { filesElement } from "./files.js";
import { $, dmKey, newConversation, request, roomKey, state } from "./state.js";
import { saveSession } from "./session.js";

// Reading the history in each conversation's order (history.js), into `merge` below.
export const {
  catchUp,
  closeGap,
  poll: pollConversation,
} = historyReader({ request, merge, onLoaded: () => renderOlderButton() });

export function ensureRoom(room, passive = false) {
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

export function ensureDm(user) {
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

/// Adds or updates messages (from the history, a live frame or an ack). `live` counts them
/// as unread when their conversation is not shown; `ordered: false` (an ack) leaves the
/// catch-up point where it is.
export function merge(conversation, entries, { live = false, ordered = true } = {}) {
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

export function edit(conversation, id, text, editedAt) {
  if (previewEdited(conversation, id, text)) renderConversations();
  const message = conversation.messages.get(id);
  if (!message) return;
  message.text = text;
  message.editedAt = editedAt;
  if (state.current === conversation.key) renderEntry(message);
}

export function remove(conversation, id) {
  if (previewDeleted(conversation, id)) renderConversations();
  const message = conversation.messages.get(id);
  if (!message) return;
  message.deleted = true;
  if (state.current === conversation.key) renderEntry(message);
}

/// A line such as "bob joined", placed after the newest message the page holds (its key
/// sorts after that id and before every later one).
export function addSystemLine(conversation, text) {
  state.systemSeq += 1;
  const key = `${conversation.newestId ?? "0"}~${String(state.systemSeq).padStart(8, "0")}`;
  const line = { kind: "system", id: key, text };
  conversation.messages.set(key, line);
  if (state.current === conversation.key) renderEntry(line);
}

/// Drops an entry (a pending send, once its ack or its failure is in) from the conversation
/// and the log.
export function forget(conversation, key) {
  conversation.messages.delete(key);
  $("log")
    .querySelector(`li[data-key="${CSS.escape(key)}"]`)
    ?.remove();
}

/// The user's rooms and direct conversations, each a button naming its conversation
/// (`data-key`), with how many messages came unseen.
export function renderConversations() {
  renderDirectList($("direct"), [...state.conversations.values()], {
    current: state.current,
    me: state.me,
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
    // app.js opens the conversation a button names, as it acts on the log's buttons.
    button.dataset.key = conversation.key;
    item.append(button);
    list.append(item);
  }
}

export function renderLog() {
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

export function renderOlderButton() {
  const conversation = state.conversations.get(state.current);
  $("older").hidden = !conversation || !conversation.moreOlder;
}

/// Puts one entry of the shown conversation in place (by its key, which sorts in the
/// conversation's order), or updates it where it is.
export function renderEntry(entry) {
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

export function excerpt(text) {
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

export async function loadOlder() {
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
