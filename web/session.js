// The session: what a reload needs to pick up where it was. sessionStorage (per tab) keeps
// the settings, whether the page was connected, the conversation shown and, of each
// conversation, the newest message read, so that a reloaded page catches up from there;
// and the servers a link names (`?ws=`, `?api=`) are weighed against those a saved token
// is for.

import { $, newConversation, state } from "./state.js";

const SESSION_KEY = "roomcast.session";

export function saveSession(connected) {
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

export function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "{}") ?? {};
  } catch {
    return {};
  }
}

export function restoreConversations(saved) {
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
export function defaultUrls(saved) {
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
export function guardSavedToken(saved) {
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
