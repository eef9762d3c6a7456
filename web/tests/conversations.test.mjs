// Direct conversations on the chat page, signed in with tokens (a signed-in user is the
// same user on every visit, so a message can wait for them): a direct message sent while
// its reader is offline waits in their list of conversations, over the WebSocket and
// polling the HTTP API, and edits and deletes reach the other side in polling mode too.
// tests/tests/it/browser.rs runs it against a gateway with sign-in on and passes the
// tokens as ROOMCAST_TOKEN_ALICE, _BOB and _CAROL (users u-alice, u-bob and u-carol).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PAGE_URL, eventually, join, message, pageErrors, screenshot, seesInOrder, send, signIn, texts } from "./browser.mjs";

const ALICE = process.env.ROOMCAST_TOKEN_ALICE;
const BOB = process.env.ROOMCAST_TOKEN_BOB;
const CAROL = process.env.ROOMCAST_TOKEN_CAROL;

/// The entry of the conversation with `nick` in `page`'s list of direct messages.
function conversationWith(page, nick) {
  return page
    .getByRole("list", { name: "Direct messages" })
    .getByRole("button")
    .filter({ has: page.locator(".who", { hasText: new RegExp(`^@${nick}$`) }) });
}

/// Waits until `page` lists a conversation with `nick` whose last message reads `last`.
async function listsConversation(page, nick, last) {
  await eventually(
    async () => assert.equal(await conversationWith(page, nick).locator(".last").textContent(), last),
    `${page.nick} lists the conversation with ${nick}, last "${last}"`,
  );
}

async function open(page, nick) {
  await conversationWith(page, nick).click();
  await eventually(
    async () => assert.equal(await page.locator("#conversation-title").textContent(), `@${nick}`),
    `${page.nick} opens the conversation with ${nick}`,
  );
}

describe("direct conversations on the chat page", { concurrency: false }, () => {
  test("over the WebSocket, a message sent while bob is offline waits in his list", async () => {
    assert.ok(ALICE && BOB && CAROL, "ROOMCAST_TOKEN_ALICE, _BOB and _CAROL are set");
    const bob = await signIn("bob", { token: BOB });
    const alice = await signIn("alice", { token: ALICE });
    await join(bob, "meeting");
    await join(alice, "meeting");
    await alice.getByRole("button", { name: "Direct message bob" }).click();
    await eventually(
      async () => assert.equal(await alice.locator("#conversation-title").textContent(), "@bob"),
      "alice opens the conversation with bob",
    );
    await listsConversation(alice, "bob", "No messages yet");
    await bob.context().close();
    await alice.locator("#conversations").getByRole("button", { name: /^#meeting/ }).click();
    await eventually(async () => assert.match(await alice.getByRole("log").textContent(), /bob went offline/), "alice sees bob go");
    await open(alice, "bob");
    await send(alice, "bob, read this when you are back");
    await seesInOrder(alice, ["bob, read this when you are back"], "her message");
    await listsConversation(alice, "bob", "you: bob, read this when you are back");

    const back = await signIn("bob", { token: BOB });
    await listsConversation(back, "alice", "alice: bob, read this when you are back");
    await screenshot(back, "conversations-list");
    await open(back, "alice");
    await seesInOrder(back, ["bob, read this when you are back"], "the message that waited");
    await send(back, "back now, alice");
    await seesInOrder(alice, ["bob, read this when you are back", "back now, alice"], "bob's answer, live");
    await listsConversation(alice, "bob", "bob: back now, alice");
    await screenshot(back, "conversation-after-offline");
    await alice.context().close();
    await back.context().close();
  });

  test("polling, direct messages are listed, read, sent, edited and deleted", async () => {
    const alice = await signIn("alice", { token: ALICE, mode: "polling" });
    // What was said over the WebSocket is there, newest last.
    await listsConversation(alice, "bob", "bob: back now, alice");
    await open(alice, "bob");
    await seesInOrder(alice, ["bob, read this when you are back", "back now, alice"], "the conversation's history");
    await send(alice, "a polled hello, bob");
    await seesInOrder(alice, ["bob, read this when you are back", "back now, alice", "a polled hello, bob"], "her message");

    const bob = await signIn("bob", { token: BOB, mode: "polling" });
    await listsConversation(bob, "alice", "alice: a polled hello, bob");
    await open(bob, "alice");
    const history = ["bob, read this when you are back", "back now, alice", "a polled hello, bob"];
    await seesInOrder(bob, history, "the whole conversation");
    await send(bob, "a polled reply with a tpyo");
    await seesInOrder(alice, [...history, "a polled reply with a tpyo"], "bob's reply, polled");

    await message(bob, "a polled reply with a tpyo").getByRole("button", { name: "Edit" }).click();
    await bob.getByLabel("Message", { exact: true }).fill("a polled reply, fixed");
    await bob.getByRole("button", { name: "Send", exact: true }).click();
    await eventually(async () => {
      const edited = message(alice, "a polled reply, fixed");
      assert.equal(await edited.count(), 1);
      assert.match(await edited.locator(".meta").textContent(), /\(edited\)/);
    }, "alice sees bob's edit, polled");
    await listsConversation(alice, "bob", "bob: a polled reply, fixed");

    await message(bob, "a polled reply, fixed").getByRole("button", { name: "Delete" }).click();
    await eventually(async () => {
      assert.equal(await message(alice, "a polled reply, fixed").count(), 0);
      assert.ok((await texts(alice)).includes("This message was deleted."));
    }, "alice sees bob's delete, polled");
    await listsConversation(alice, "bob", "(deleted)");
    await listsConversation(bob, "alice", "(deleted)");

    // A conversation that starts while bob's page polls shows up in his list, as new.
    const sent = await fetch(new URL("api/users/u-bob/messages", PAGE_URL), {
      method: "POST",
      headers: { authorization: `Bearer ${CAROL}`, "content-type": "application/json" },
      body: JSON.stringify({ text: "hi bob, carol here" }),
    });
    assert.equal(sent.status, 202, await sent.text());
    await listsConversation(bob, "carol", "carol: hi bob, carol here");
    assert.match(await conversationWith(bob, "carol").textContent(), /1 new/);
    // Latest first: carol's conversation is above alice's.
    const order = await bob.getByRole("list", { name: "Direct messages" }).locator(".who").allTextContents();
    assert.deepEqual(order, ["@carol", "@alice"]);
    await open(bob, "carol");
    await seesInOrder(bob, ["hi bob, carol here"], "carol's message");
    await screenshot(bob, "conversations-polling");
  });

  test("no page logged an error", () => {
    assert.deepEqual(pageErrors, []);
  });
});
