// The chat page in a real browser: headless Chromium (Debian's) driven by playwright-core,
// against a running local gateway that serves the page. Run by `cargo test` (tests/tests/
// it/browser.rs starts the gateway on embedded and on real backends and runs this file),
// or by hand: ROOMCAST_PAGE_URL=http://127.0.0.1:3001/ npm test (in web/).
//
// Every step is what a user does (labels, buttons, the message log) and every check is
// what a user would see. Screenshots of each scenario go to ROOMCAST_SCREENSHOTS.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CONNECTIONS_URL,
  PAGE_URL,
  alertText,
  eventually,
  join,
  message,
  pageErrors,
  screenshot,
  seesInOrder,
  send,
  signIn,
  texts,
} from "./browser.mjs";

// On a gateway of its own (ROOMCAST_FRESH_GATEWAY, as cargo test runs it) the names are
// plain, as in the README's screenshot; on a shared one they get a suffix of this run.
const run = process.env.ROOMCAST_FRESH_GATEWAY ? "" : `-${Math.random().toString(36).slice(2, 7)}`;
const room = `lobby${run}`;
const nicks = { alice: `alice${run}`, bob: `bob${run}`, carol: `carol${run}`, dave: `dave${run}` };

describe("the chat page", { concurrency: false }, () => {
  let alice;
  let bob;
  let carol;

  test("two users chat in a room over the WebSocket and a third, polling, sees the same messages", async () => {
    alice = await signIn(nicks.alice);
    bob = await signIn(nicks.bob);
    carol = await signIn(nicks.carol, { mode: "polling" });
    // The room does not exist yet: Join makes it.
    await join(alice, room);
    await join(bob, room);
    await join(carol, room);
    await eventually(
      async () => assert.ok((await alice.getByRole("log").textContent()).includes(`${nicks.bob} joined`)),
      "alice sees bob join",
    );
    await eventually(
      async () => assert.match(await alice.locator("#people").textContent(), new RegExp(nicks.bob)),
      "bob is online in alice's list",
    );

    await send(alice, "hello bob, this is alice");
    await seesInOrder(bob, ["hello bob, this is alice"], "alice's message");
    await message(bob, "hello bob, this is alice").getByRole("button", { name: "Reply" }).click();
    await send(bob, "hi alice! the page works");
    await seesInOrder(alice, ["hello bob, this is alice", "hi alice! the page works"], "bob's reply");
    const quote = await message(alice, "hi alice! the page works").locator(".quote").textContent();
    assert.ok(quote.includes(`${nicks.alice}: hello bob, this is alice`), `the reply quotes alice: ${quote}`);
    await send(carol, "carol here, polling");
    const conversation = ["hello bob, this is alice", "hi alice! the page works", "carol here, polling"];
    await seesInOrder(alice, conversation, "carol's polled message");
    await seesInOrder(bob, conversation, "carol's polled message");
    await seesInOrder(carol, conversation, "the WebSocket users' messages, polled");
    await screenshot(alice, "two-users-chatting");
    await screenshot(bob, "two-users-chatting-bob");
    await screenshot(carol, "polling-mode");
  });

  test("an edit and a delete show on the other side, live and polled", async () => {
    await send(alice, "a typo mesage");
    await seesInOrder(bob, ["a typo mesage"], "the message to edit");
    await message(alice, "a typo mesage").getByRole("button", { name: "Edit" }).click();
    await alice.getByLabel("Message", { exact: true }).fill("a fixed message");
    await alice.getByRole("button", { name: "Send", exact: true }).click();
    // The server accepted the edit: alice's own page shows it, and no error.
    await eventually(
      async () => assert.match(await message(alice, "a fixed message").locator(".meta").textContent(), /\(edited\)/),
      "alice's edit is accepted",
    );
    assert.equal(await alice.locator("#alert-text").textContent(), "", "no error on alice's page");
    await send(alice, "this one goes away");
    for (const page of [bob, carol]) {
      await eventually(async () => {
        const edited = message(page, "a fixed message");
        assert.equal(await edited.count(), 1);
        assert.match(await edited.locator(".meta").textContent(), /\(edited\)/);
        assert.equal(await message(page, "a typo mesage").count(), 0);
      }, `${page.nick} sees the edit`);
      await seesInOrder(page, ["this one goes away"], "the message to delete");
    }
    await message(alice, "this one goes away").getByRole("button", { name: "Delete" }).click();
    for (const page of [alice, bob, carol]) {
      await eventually(async () => {
        assert.equal(await message(page, "this one goes away").count(), 0);
        assert.ok((await texts(page)).includes("This message was deleted."));
      }, `${page.nick} sees the delete`);
    }
    // Nobody may edit or delete another's message: bob's page offers neither.
    assert.equal(await message(bob, "a fixed message").getByRole("button", { name: "Edit" }).count(), 0);
    assert.equal(await message(bob, "a fixed message").getByRole("button", { name: "Delete" }).count(), 0);
    await screenshot(bob, "edit-and-delete");
  });

  test("a page reloaded mid-conversation catches up without gaps or repeats", async () => {
    const before = ["before the reload 1", "before the reload 2"];
    for (const text of before) await send(alice, text);
    await seesInOrder(bob, before, "the messages before the reload");
    const during = Array.from({ length: 12 }, (_, i) => `while bob reloads ${i + 1}`);
    const reloading = bob.reload();
    for (const text of during) await send(alice, text);
    await reloading;
    await eventually(
      async () => assert.match(await bob.getByRole("status").textContent(), new RegExp(`Connected as ${nicks.bob}`)),
      "bob is back",
    );
    const afterwards = ["after the reload 1", "after the reload 2"];
    for (const text of afterwards) await send(alice, text);
    const all = [...before, ...during, ...afterwards];
    await seesInOrder(bob, all, "every message once, in order");
    assert.equal(await bob.locator("#conversation-title").textContent(), `#${room}`, "the reloaded page shows the room it showed");
    // And still nothing twice once the reloaded page's catch-up has finished.
    await eventually(
      async () => assert.ok(Number(await bob.getByRole("status").getAttribute("data-synced")) >= 1),
      "bob's page has caught up",
    );
    const shown = await texts(bob);
    for (const text of all) assert.equal(shown.filter((t) => t === text).length, 1, `"${text}" once`);
    assert.deepEqual(
      shown.filter((text) => all.includes(text)),
      all,
    );
    await screenshot(bob, "after-reload");
  });

  test("a page away while more than a page of messages was sent catches up on all of them", async () => {
    await seesInOrder(bob, ["after the reload 2"], "the last message before leaving");
    // Leaving the page and coming back in the same tab, as a reload that took long: more
    // was sent meanwhile than the latest page (50) holds, so the page must page on from
    // the newest message it had seen.
    await bob.goto("about:blank");
    const away = Array.from({ length: 55 }, (_, i) => `while bob is gone ${i + 1}`);
    for (const text of away) await send(alice, text);
    await seesInOrder(alice, away, "her own messages");
    await bob.goto(PAGE_URL);
    await seesInOrder(bob, ["after the reload 2", ...away], "every message sent while away, once, in order");
    const shown = await texts(bob);
    for (const text of away) assert.equal(shown.filter((t) => t === text).length, 1, `"${text}" once`);
  });

  test("a connection the server drops comes back by itself and misses nothing", async () => {
    const status = bob.getByRole("status");
    const connectionId = await status.getAttribute("data-connection-id");
    assert.ok(connectionId, "the page shows its connection id");
    const dropped = await fetch(`${CONNECTIONS_URL}/@connections/${encodeURIComponent(connectionId)}`, { method: "DELETE" });
    assert.equal(dropped.status, 204);
    const missed = Array.from({ length: 5 }, (_, i) => `while bob is away ${i + 1}`);
    for (const text of missed) await send(alice, text);
    await eventually(async () => {
      assert.match(await status.textContent(), new RegExp(`Connected as ${nicks.bob}`));
      assert.notEqual(await status.getAttribute("data-connection-id"), connectionId);
    }, "bob reconnects on a new connection");
    await send(alice, "welcome back bob");
    const expected = [...missed, "welcome back bob"];
    await seesInOrder(bob, expected, "what was sent while away");
    const shown = await texts(bob);
    for (const text of expected) assert.equal(shown.filter((t) => t === text).length, 1, `"${text}" once`);
  });

  test("edits and deletes made while a page was away show once it is back", async () => {
    const [toFix, toDelete] = ["to be fixed while bob is away", "to be gone while bob is away"];
    for (const text of [toFix, toDelete]) await send(alice, text);
    await seesInOrder(bob, [toFix, toDelete], "the messages bob has");
    const status = bob.getByRole("status");
    const connectionId = await status.getAttribute("data-connection-id");
    const synced = Number(await status.getAttribute("data-synced"));
    // Away for as long as the test says: the network is off, and the server drops the
    // connection, so bob's page cannot come back until it is on again.
    await bob.context().setOffline(true);
    const dropped = await fetch(`${CONNECTIONS_URL}/@connections/${encodeURIComponent(connectionId)}`, { method: "DELETE" });
    assert.equal(dropped.status, 204);
    await eventually(async () => assert.doesNotMatch(await status.textContent(), /Connected as/), "bob's page knows it is away");

    await message(alice, toFix).getByRole("button", { name: "Edit" }).click();
    await alice.getByLabel("Message", { exact: true }).fill("fixed while bob was away");
    await alice.getByRole("button", { name: "Send", exact: true }).click();
    await message(alice, toDelete).getByRole("button", { name: "Delete" }).click();
    // carol polls the history: once she sees both, the history holds them.
    await eventually(async () => {
      assert.equal(await message(carol, "fixed while bob was away").count(), 1);
      assert.equal(await message(carol, toDelete).count(), 0);
    }, "the history has the edit and the delete");

    await bob.context().setOffline(false);
    await eventually(async () => {
      assert.match(await status.textContent(), new RegExp(`Connected as ${nicks.bob}`));
      assert.notEqual(await status.getAttribute("data-connection-id"), connectionId);
      assert.ok(Number(await status.getAttribute("data-synced")) > synced);
    }, "bob is back and has caught up");
    await eventually(async () => {
      assert.equal(await message(bob, "fixed while bob was away").count(), 1);
      assert.equal(await message(bob, toFix).count(), 0);
      assert.equal(await message(bob, toDelete).count(), 0);
    }, "bob sees the edit and the delete made while he was away");
  });

  test("an error frame shows as a message to the user and changes nothing", async () => {
    const long = "x".repeat(5000);
    await send(bob, long);
    assert.match(await alertText(bob), /Could not send the message: it is too long/);
    // The text is given back, and nobody got anything.
    assert.equal(await bob.getByLabel("Message", { exact: true }).inputValue(), long);
    await bob.getByRole("button", { name: "Dismiss error" }).click();
    // Over API Gateway's 32 KB frame, which would end the connection: refused before sending.
    await send(bob, "y".repeat(40000));
    assert.match(await alertText(bob), /Could not send the message: it is too long \(the frame is \d+ bytes/);
    assert.match(await bob.getByRole("status").textContent(), new RegExp(`Connected as ${nicks.bob}`));
    await bob.getByRole("button", { name: "Dismiss error" }).click();
    await bob.getByLabel("Room", { exact: true }).fill("no spaces allowed");
    await bob.getByRole("button", { name: "Join", exact: true }).click();
    assert.match(await alertText(bob), /Could not join the room: the server refused it \(room name may only contain .*\)/);
    await screenshot(bob, "error-shown");
    await bob.getByRole("button", { name: "Dismiss error" }).click();
    await bob.getByLabel("Message", { exact: true }).fill("");
    await send(bob, "after the errors");
    await seesInOrder(alice, ["after the errors"], "bob's next message");
    assert.ok(!(await texts(alice)).some((text) => /^(xxxx|yyyy)/.test(text)), "the long messages reached nobody");
  });

  test("a direct message reaches only its recipient", async () => {
    await alice.getByRole("button", { name: `Direct message ${nicks.bob}` }).click();
    await eventually(
      async () => assert.equal(await alice.locator("#conversation-title").textContent(), `@${nicks.bob}`),
      "alice opens the conversation",
    );
    await send(alice, "psst, bob");
    const fromAlice = bob.getByRole("button", { name: new RegExp(`^@${nicks.alice}`) });
    await eventually(async () => assert.match(await fromAlice.textContent(), /1 new/), "bob sees a new direct message");
    await fromAlice.click();
    await seesInOrder(bob, ["psst, bob"], "the direct message");
    await send(bob, "hi alice, only you see this");
    await seesInOrder(alice, ["psst, bob", "hi alice, only you see this"], "the direct conversation");
    assert.equal(await carol.getByRole("button", { name: new RegExp(`^@`) }).count(), 0, "carol has no direct conversation");
    await screenshot(bob, "direct-message");
  });

  test("scrollback loads older messages through the history", async () => {
    const busy = `busy${run}`;
    await join(alice, busy);
    const sent = Array.from({ length: 60 }, (_, i) => `busy ${String(i + 1).padStart(2, "0")}`);
    for (const text of sent) await send(alice, text);
    await seesInOrder(alice, sent, "her own messages");
    const dave = await signIn(nicks.dave);
    await join(dave, busy);
    // The latest page first: the 50 newest.
    await seesInOrder(dave, sent.slice(10), "the latest page");
    await dave.getByRole("button", { name: "Load older messages" }).click();
    await seesInOrder(dave, sent, "every message after scrolling back");
    await eventually(async () => assert.ok(await dave.getByRole("button", { name: "Load older messages" }).isHidden()), "nothing older");
  });

  test("no page logged an error", () => {
    assert.deepEqual(pageErrors, []);
  });
});
