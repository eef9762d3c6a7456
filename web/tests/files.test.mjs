// Attachments in the chat page, in a real browser: one user attaches an image over the
// WebSocket and another, polling, sees it inline; the poller attaches a text file and the
// first sees a download link with its name and size, and gets the same bytes from it.
// Run by `cargo test` (tests/tests/it/browser.rs, on the embedded backends, whose file
// store the gateway serves at the page's own origin), or by hand:
// ROOMCAST_PAGE_URL=http://127.0.0.1:3001/ node --test tests/files.test.mjs (in web/).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { eventually, join, message, pageErrors, screenshot, seesInOrder, send, signIn } from "./browser.mjs";

const run = process.env.ROOMCAST_FRESH_GATEWAY ? "" : `-${Math.random().toString(36).slice(2, 7)}`;
const room = `pictures${run}`;
/// A real PNG: the README's own screenshot.
const IMAGE = fileURLToPath(new URL("../screenshots/two-users-chatting.png", import.meta.url));

/// Attaches `files` (paths, or {name, mimeType, buffer}) and waits until they are uploaded.
async function attach(page, files) {
  await page.locator("#attach-input").setInputFiles(files);
  await eventually(async () => {
    assert.equal(await page.locator("#attachments").isVisible(), true);
    assert.equal(await page.locator("#upload-progress").isVisible(), false);
    assert.equal(await page.getByRole("button", { name: "Send", exact: true }).isEnabled(), true);
  }, `${page.nick}'s files are uploaded`);
}

describe("attachments in the chat page", { concurrency: false }, () => {
  test("an image attached over the WebSocket shows inline for a polling user, and a file as a link", async () => {
    const alice = await signIn(`alice${run}`);
    const bob = await signIn(`bob${run}`, { mode: "polling" });
    await join(alice, room);
    await join(bob, room);

    await attach(alice, IMAGE);
    assert.match(await alice.locator("#attachments").textContent(), /two-users-chatting\.png \(\d+\.\d KB\)/);
    await send(alice, "the page, as it looks");
    await seesInOrder(bob, ["the page, as it looks"], "alice's message with its image");
    const thumb = message(bob, "the page, as it looks").locator("img.thumb");
    await eventually(
      async () => assert.ok((await thumb.evaluate((image) => image.complete && image.naturalWidth)) > 100),
      "bob's page shows the image",
    );
    assert.match(await thumb.getAttribute("alt"), /^two-users-chatting\.png \(/);
    // The sender sees its own image too (from the file it chose).
    const own = message(alice, "the page, as it looks").locator("img.thumb");
    await eventually(async () => assert.ok((await own.evaluate((image) => image.naturalWidth)) > 100), "alice's own image");

    const notes = "meeting notes\n- ship files\n";
    await attach(bob, { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from(notes) });
    await send(bob, "");
    await seesInOrder(alice, ["the page, as it looks", "notes.txt"], "bob's file, sent under its name");
    const link = message(alice, "notes.txt").locator("a.file");
    const size = Buffer.byteLength(notes);
    await eventually(async () => assert.equal(await link.textContent(), `notes.txt (${size} B)`), "a link with name and size");
    const href = await link.getAttribute("href");
    const fetched = await alice.evaluate(async (url) => {
      const response = await fetch(url);
      return { status: response.status, text: await response.text(), disposition: response.headers.get("content-disposition") };
    }, href);
    assert.equal(fetched.status, 200);
    assert.equal(fetched.text, notes);
    // moto's S3 serves no Content-Disposition (it ignores the signed
    // response-content-disposition); the Rust tests check what the URL signs there.
    if (!process.env.ROOMCAST_FILES_ON_MOTO) assert.match(fetched.disposition, /^attachment;/);
    await screenshot(bob, "an-image-in-the-page");
    assert.deepEqual(pageErrors, []);
  });
});

// A real image's bytes, to fail early with a clear message if the file went missing.
assert.ok(readFileSync(IMAGE).subarray(1, 4).toString() === "PNG", `${IMAGE} is a PNG`);
