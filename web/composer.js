// The composer: the message box with its context (a reply or an edit of one's own
// message), the files attached to the next message, and sending it (shown as pending until
// the server's ack gives it its id and place); and deleting a message.

import { target } from "./history.js";
import { formatSize, upload } from "./files.js";
import { $, request, state } from "./state.js";
import { setStatus, showError } from "./alerts.js";
import { edit, excerpt, forget, merge, remove, renderEntry } from "./view.js";

export function renderComposer() {
  const conversation = state.conversations.get(state.current);
  const enabled = Boolean(conversation) && !(conversation.passive && conversation.kind === "room");
  $("message").disabled = !enabled;
  $("send").disabled = !enabled || state.uploading > 0;
  $("attach").disabled = !enabled || state.uploading > 0;
}

export function setComposerContext(context) {
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

export async function submitMessage() {
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
export async function attachFiles(chosen) {
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

export async function deleteMessage(conversation, id) {
  await request({ action: "delete", ...target(conversation), id });
  remove(conversation, id);
}
