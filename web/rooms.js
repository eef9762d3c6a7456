// Rooms and people: the catalog of rooms, joining (a room nobody made yet is made by
// joining it) and leaving, which conversation is shown, and who is online in the room
// shown, each with a button for a direct message.

import { $, roomKey, request, state } from "./state.js";
import { saveSession } from "./session.js";
import { showError } from "./alerts.js";
import { catchUp, ensureDm, ensureRoom, pollConversation, renderConversations, renderLog } from "./view.js";
import { renderComposer, setComposerContext } from "./composer.js";

export async function refreshCatalog() {
  const answer = await request({ action: "rooms" });
  state.catalog = answer.rooms.map((room) => room.name).sort();
  renderCatalog();
}

export async function refreshWho() {
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
export function refreshWhoSoon() {
  clearTimeout(whoTimer);
  whoTimer = setTimeout(refreshWho, 300);
}

export async function joinRoom(room) {
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

export async function leaveRoom(conversation) {
  await request({ action: "leave", room: conversation.room });
  dropConversation(conversation);
}

export function dropConversation(conversation) {
  state.conversations.delete(conversation.key);
  if (state.current === conversation.key) {
    const next = state.conversations.keys().next();
    selectConversation(next.done ? null : next.value);
  }
  renderConversations();
  saveSession();
}

export function selectConversation(key) {
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

async function openDm(user) {
  await openConversation(ensureDm(user));
}

/// Shows a direct conversation, read from its history the first time.
export async function openConversation(conversation) {
  selectConversation(conversation.key);
  if (conversation.loaded) return;
  if (state.settings.mode === "polling") await pollConversation(conversation);
  else await catchUp(conversation);
}

export function renderCatalog() {
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
