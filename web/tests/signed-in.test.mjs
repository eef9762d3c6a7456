// The chat page with tokens (JWT mode): against a gateway with sign-in on
// (ROOMCAST_AUTH=optional and an HS256 secret; tests/tests/it/browser.rs signs the tokens
// and passes them as ROOMCAST_TOKEN_ALICE and ROOMCAST_TOKEN_BOB, nicknamed alice and bob).
// A signed-in user is the same user after a reload and on a second device.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { eventually, join, message, pageErrors, screenshot, seesInOrder, send, signIn } from "./browser.mjs";

const ALICE = process.env.ROOMCAST_TOKEN_ALICE;
const BOB = process.env.ROOMCAST_TOKEN_BOB;

describe("the chat page, signed in with tokens", { concurrency: false }, () => {
  let alice;
  let bob;

  test("a token signs in over the WebSocket and, polling, over the HTTP API", async () => {
    assert.ok(ALICE && BOB, "ROOMCAST_TOKEN_ALICE and ROOMCAST_TOKEN_BOB are set");
    alice = await signIn("alice", { token: ALICE });
    bob = await signIn("bob", { token: BOB, mode: "polling" });
    await join(alice, "signed");
    await join(bob, "signed");
    await send(alice, "hi from a signed-in alice");
    await seesInOrder(bob, ["hi from a signed-in alice"], "alice's message, polled with his token");
    await send(bob, "bob polls with his own token");
    await seesInOrder(alice, ["hi from a signed-in alice", "bob polls with his own token"], "bob's message");
  });

  test("after a reload alice is the same user: her message is still hers to edit", async () => {
    await alice.reload();
    await eventually(
      async () => assert.match(await alice.getByRole("status").textContent(), /Connected as alice/),
      "alice is back",
    );
    await seesInOrder(alice, ["hi from a signed-in alice", "bob polls with his own token"], "the conversation");
    await message(alice, "hi from a signed-in alice").getByRole("button", { name: "Edit" }).click();
    await alice.getByLabel("Message", { exact: true }).fill("hi from alice, edited after a reload");
    await alice.getByRole("button", { name: "Send", exact: true }).click();
    await eventually(async () => {
      const edited = message(bob, "hi from alice, edited after a reload");
      assert.equal(await edited.count(), 1);
      assert.match(await edited.locator(".meta").textContent(), /\(edited\)/);
    }, "bob sees the edit");
    // Bob's message is not alice's.
    assert.equal(await message(alice, "bob polls with his own token").getByRole("button", { name: "Edit" }).count(), 0);
  });

  test("on a second device alice is in her rooms at once", async () => {
    const phone = await signIn("alice", { token: ALICE });
    await eventually(
      async () => assert.equal(await phone.locator("#conversation-title").textContent(), "#signed"),
      "the second device shows alice's room without joining it",
    );
    await seesInOrder(phone, ["hi from alice, edited after a reload", "bob polls with his own token"], "the room's history");
    await send(phone, "typed on the phone");
    await seesInOrder(alice, ["typed on the phone"], "her own message from the other device");
    await seesInOrder(bob, ["typed on the phone"], "alice's message from her phone");
    await screenshot(alice, "signed-in-two-devices");
  });

  test("a bad token is told, not retried silently", async () => {
    const intruder = await signIn("mallory", { token: "not-a-token", expectConnected: false });
    await eventually(
      async () => assert.match(await intruder.getByRole("alert").textContent(), /Could not connect/),
      "the page says it cannot connect",
    );
  });

  test("no page logged an error", () => {
    assert.deepEqual(pageErrors, []);
  });
});
