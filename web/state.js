// The page's shared state: the connection, who the user is, and every conversation it
// holds (a room or a direct conversation, its messages kept by id in the conversation's
// order), with `request`, the one way the other modules talk to the server, and `$`, the
// one way they find an element. Nothing here draws: the modules that build on this one
// do (view.js, composer.js, rooms.js, connection.js, app.js).

import { RequestError } from "./transport.js";

export const $ = (id) => document.getElementById(id);

export const state = {
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

export function roomKey(room) {
  return `room:${room}`;
}

export function dmKey(userId) {
  return `dm:${userId}`;
}

export function newConversation(fields) {
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

export function conversationOf(frame) {
  if (frame.room !== undefined) return state.conversations.get(roomKey(frame.room));
  if (frame.with !== undefined) return state.conversations.get(dmKey(frame.with));
  return undefined;
}

export function request(frame) {
  if (!state.transport) return Promise.reject(new RequestError("disconnected", "not connected", frame.action));
  return state.transport.request(frame);
}
