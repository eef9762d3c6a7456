// What the page tells the user: the status line (what the connection is doing) and the
// alert, where every failed request shows as a sentence naming what could not be done and
// why.

import { RequestError } from "./transport.js";
import { $ } from "./state.js";

export function setStatus(text) {
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

export function showError(error) {
  if (!(error instanceof RequestError)) {
    console.error(error);
    showAlert(`Something went wrong: ${error.message ?? error}`);
    return;
  }
  const what = ACTIONS[error.action] ?? (error.action ? `do “${error.action}”` : "do that");
  const why = CODES[error.code] ?? error.code;
  showAlert(`Could not ${what}: ${why} (${error.message}).`);
}

export function showAlert(text) {
  $("alert-text").textContent = text;
  $("alert").hidden = false;
}

export function clearAlert() {
  $("alert-text").textContent = "";
  $("alert").hidden = true;
}
