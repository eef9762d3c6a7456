// The chat page with tokens (JWT mode): against a gateway with sign-in on
// (ROOMCAST_AUTH=optional and an HS256 secret; tests/tests/it/browser.rs signs the tokens
// and passes them as ROOMCAST_TOKEN_ALICE and ROOMCAST_TOKEN_BOB, nicknamed alice and bob).
// A signed-in user is the same user after a reload and on a second device.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { PAGE_URL, eventually, join, message, pageErrors, screenshot, seesInOrder, send, signIn } from "./browser.mjs";

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

  test("a link naming another server never gets the saved token", async () => {
    // The same gateway under another name: a token sent there would be accepted, and seen.
    const other = new URL(PAGE_URL);
    other.hostname = "localhost";
    const ws = `ws://${other.host}/`;
    const api = other.origin;
    const link = `${PAGE_URL}?ws=${encodeURIComponent(ws)}&api=${encodeURIComponent(api)}`;
    // The page's own code is what is tested here: the policy is set aside.
    const page = await signIn("alice", { token: ALICE, bypassCSP: true });
    const leaks = [];
    const watch = (url, authorization) => {
      if (new URL(url).hostname === "localhost") leaks.push(`${url} ${authorization ?? ""}`);
    };
    page.on("request", (request) => watch(request.url(), request.headers().authorization));
    page.on("websocket", (socket) => watch(socket.url()));
    const asked = [];
    const answer = (accept) =>
      page.once("dialog", async (dialog) => {
        asked.push(dialog.message());
        await (accept ? dialog.accept() : dialog.dismiss());
      });

    // Staying: the page reconnects to the server the token is for, and forgets the link.
    answer(false);
    await page.goto(link);
    await eventually(
      async () => assert.match(await page.getByRole("status").textContent(), /Connected as alice/),
      "alice is back on her own server",
    );
    assert.deepEqual(leaks, [], "nothing went to the other server");
    assert.equal(asked.length, 1, "the user was asked");
    assert.match(asked[0], new RegExp(`another server: ${ws}`));
    assert.equal(new URL(page.url()).search, "", "the link's servers are forgotten");

    // Switching: the token is dropped before anything is sent to the new server.
    answer(true);
    await page.goto(link);
    const form = page.locator("#signin-form");
    await eventually(async () => assert.equal(await form.isVisible(), true), "the sign-in form shows");
    assert.equal(asked.length, 2);
    assert.equal(await page.getByLabel("Token (optional)").inputValue(), "", "no token in the form");
    assert.equal(await form.locator("[name=ws]").inputValue(), ws, "the new server, to sign in afresh");
    const saved = await page.evaluate(() => sessionStorage.getItem("roomcast.session"));
    assert.ok(!saved.includes(ALICE), "the token is not kept for the new server");
    assert.deepEqual(leaks, [], "nothing went to the other server");
    await page.context().close();
  });

  test("the page's policy lets it connect to its own server only", async () => {
    const page = await signIn("carol", { expectConnected: false });
    const other = new URL(PAGE_URL);
    other.hostname = "localhost";
    const refused = await page.evaluate(
      (url) =>
        new Promise((resolve) => {
          document.addEventListener("securitypolicyviolation", (event) => resolve(event.violatedDirective), {
            once: true,
          });
          try {
            // Allowed, it would reach the gateway: the same one, under another name.
            new WebSocket(url).addEventListener("open", () => resolve("opened"));
          } catch (error) {
            resolve(error.name);
          }
        }),
      `ws://${other.host}/`,
    );
    assert.match(refused, /connect-src|SecurityError/);
    await page.context().close();
  });

  test("no page logged an error", () => {
    assert.deepEqual(pageErrors, []);
  });
});
