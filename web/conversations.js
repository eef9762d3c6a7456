// The page's list of direct conversations: each with the other user and its last message,
// latest first. The server's `conversations` answer (over the WebSocket or
// `GET /api/conversations`) fills it when the page connects and, polling, on every poll;
// live `dm`, `edited` and `deleted` frames and the messages the page reads keep it current
// in between. state.js and view.js own the conversations themselves; this module keeps
// what the list shows of each (its `preview`) and draws the list.

/// How many conversations the list reads: the latest ones (older ones come back to the
/// top of the list when they get a new message).
export const LIST_LIMIT = 50;

/// The last message of `conversation` as the list shows it, if `message` (a history entry,
/// a live frame, an ack or a `conversations` answer's `last`) is it: the newest id wins,
/// and the same id again brings its edit or its deletion. Ids of one conversation sort in
/// its order. Returns whether the preview changed.
export function notePreview(conversation, message) {
  const shown = conversation.preview;
  if (!message?.id || (shown && message.id < shown.id)) return false;
  const deleted = Boolean(message.deleted);
  const same = shown && shown.id === message.id;
  const preview = {
    id: message.id,
    // A deleted message read from the history has lost its author and time: keep those seen.
    from: message.from ?? (same ? shown.from : undefined),
    text: deleted ? undefined : (message.text ?? (same ? shown.text : undefined)),
    ts: message.ts ?? (same ? shown.ts : undefined) ?? shown?.ts,
    deleted: deleted || Boolean(same && shown.deleted),
  };
  if (same && preview.text === shown.text && preview.deleted === shown.deleted && preview.from === shown.from) return false;
  conversation.preview = preview;
  return true;
}

/// An edit of message `id`: the preview follows if it shows that message.
export function previewEdited(conversation, id, text) {
  const shown = conversation.preview;
  if (!shown || shown.id !== id || shown.deleted) return false;
  conversation.preview = { ...shown, text };
  return true;
}

/// A deletion of message `id`: the preview follows if it shows that message.
export function previewDeleted(conversation, id) {
  const shown = conversation.preview;
  if (!shown || shown.id !== id) return false;
  conversation.preview = { ...shown, text: undefined, deleted: true };
  return true;
}

/// When the conversation last moved: its last message's time, else when the page opened it.
function movedAt(conversation) {
  return conversation.preview?.ts ?? conversation.openedAt ?? 0;
}

/// The direct conversations among `conversations`, latest first. (Ids of different
/// conversations come from different parts of the log, so they are compared by time.)
export function latestFirst(conversations) {
  return conversations.filter((conversation) => conversation.kind === "dm").sort((a, b) => movedAt(b) - movedAt(a));
}

/// Reads the caller's latest conversations and brings each into the page: `ensure(user)`
/// gives the page's conversation with that user, and `onNewer(conversation, last)` is
/// told of each whose last message is newer than the one it showed (or that it had not
/// listed before: then `first` is true).
export async function refreshConversations(request, { ensure, onNewer }) {
  const page = await request({ action: "conversations", limit: LIST_LIMIT });
  let changed = false;
  for (const { with: user, last } of page.conversations ?? []) {
    const conversation = ensure(user);
    const title = `@${user.nick}`;
    if (conversation.title !== title) {
      // Nicknames change: the list shows the one the user has now.
      conversation.title = title;
      changed = true;
    }
    const before = conversation.preview?.id;
    if (notePreview(conversation, last)) {
      changed = true;
      if (before === undefined || last.id > before) onNewer(conversation, last, { first: before === undefined });
    }
  }
  return changed;
}

/// Draws the direct conversations into `list`: each a button with the other user's
/// nickname, how many messages came unseen, and the last message, naming its conversation
/// (`data-key`) for the page to open.
export function renderDirectList(list, conversations, { current, me }) {
  list.replaceChildren();
  const direct = latestFirst(conversations);
  if (direct.length === 0) {
    const none = document.createElement("li");
    none.className = "help";
    none.textContent = "None yet: Message someone online.";
    list.append(none);
  }
  for (const conversation of direct) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const title = document.createElement("span");
    title.className = "who";
    title.textContent = conversation.title;
    button.append(title);
    if (conversation.unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = ` ${conversation.unread} new`;
      button.append(badge);
    }
    const last = document.createElement("span");
    last.className = "last";
    last.textContent = previewText(conversation.preview, me);
    button.append(last);
    if (conversation.key === current) button.setAttribute("aria-current", "true");
    button.dataset.key = conversation.key;
    item.append(button);
    list.append(item);
  }
}

function previewText(preview, me) {
  if (!preview) return "No messages yet";
  if (preview.deleted) return "(deleted)";
  const text = preview.text ?? "";
  const short = text.length > 60 ? `${text.slice(0, 59)}…` : text;
  if (!preview.from) return short;
  return `${preview.from.userId === me?.userId ? "you" : preview.from.nick}: ${short}`;
}
