// roomcast's chat page: sign in, rooms, messages, presence, direct messages, history,
// replies, edits and deletes, over a WebSocket or by polling the HTTP API once a second.
// Plain DOM, no build step. This module starts the page: the sign-in form, a reloaded
// page's session, and the controls wired to what they do. The rest, each in a module of
// its own, in the order they build on each other: state.js (the shared state), session.js
// (what a reload keeps), alerts.js (the status line and errors), view.js (the conversations
// and the log), composer.js (writing, attaching, editing), rooms.js (rooms and people),
// connection.js (connecting, catching up, the server's frames); over transport.js,
// history.js, conversations.js and files.js.

import { $, state } from "./state.js";
import { defaultUrls, guardSavedToken, readSession, restoreConversations } from "./session.js";
import { clearAlert, showAlert, showError } from "./alerts.js";
import { loadOlder } from "./view.js";
import { attachFiles, deleteMessage, setComposerContext, submitMessage } from "./composer.js";
import { joinRoom, leaveRoom, openConversation, refreshCatalog, selectConversation } from "./rooms.js";
import { connect, disconnect } from "./connection.js";

const NICK = /^[A-Za-z0-9_.-]{1,32}$/;

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
  // Each button of the lists of conversations names its conversation (`data-key`), as
  // the log's buttons name their message: a click shows it (a direct one read the first time).
  $("conversations").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-key]");
    if (button) selectConversation(button.dataset.key);
  });
  $("direct").addEventListener("click", (event) => {
    const conversation = state.conversations.get(event.target.closest("button[data-key]")?.dataset.key);
    if (conversation) openConversation(conversation).catch(showError);
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

start();
