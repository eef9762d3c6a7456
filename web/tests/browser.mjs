// What the browser scenarios share: the browser (Debian's Chromium through
// playwright-core), the page's URLs from the environment the test harness sets, and the
// steps and checks a user makes (labels, buttons, the message log, the status line).

import { after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import { chromium } from "playwright-core";

export const PAGE_URL = process.env.ROOMCAST_PAGE_URL ?? "http://127.0.0.1:3001/";
const SCREENSHOTS = process.env.ROOMCAST_SCREENSHOTS ?? "screenshots";
/// The gateway's `@connections` endpoint (the stage URL), to drop a connection as API
/// Gateway does when it ends one.
export const CONNECTIONS_URL = process.env.ROOMCAST_CONNECTIONS_URL ?? new URL("/local", PAGE_URL).toString();
const CHROMIUM = process.env.ROOMCAST_CHROMIUM ?? "/usr/bin/chromium";
// Without the background-networking flags Chromium stalls on a closed network.
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
/// Longest wait for something to show: generous for a loaded CI machine (a polling client
/// sees a message only once it settled, 5 s by default), never reached when things work.
export const WAIT_MS = 45000;

let browser;
export const pageErrors = [];

before(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS, timeout: 60000 });
});

after(async () => {
  await browser?.close();
});

/// Waits until `check` stops throwing, and throws its last error if it never does.
export async function eventually(check, what, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: still not true after ${timeout} ms: ${lastError?.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/// A new browser context (its own storage, as another person's browser) on the page,
/// signed in as `nick` (or with `token`, whose nickname is `nick`). `bypassCSP`: the page's
/// own code is all that stands between it and other hosts.
export async function signIn(nick, { mode = "websocket", token = "", expectConnected = true, bypassCSP = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 }, bypassCSP });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${nick}: ${error.message}`));
  page.nick = nick;
  await page.goto(PAGE_URL);
  // With a token the nickname comes from it.
  if (token) await page.getByLabel("Token (optional)").fill(token);
  else await page.getByLabel("Nickname").fill(nick);
  if (mode === "polling") await page.getByLabel("Polling (HTTP API, once a second)").check();
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  if (!expectConnected) return page;
  const connected = mode === "polling" ? `Polling as ${nick}` : `Connected as ${nick}`;
  await eventually(async () => assert.match(await page.getByRole("status").textContent(), new RegExp(connected)), `${nick} connects`);
  return page;
}

export async function join(page, name) {
  await page.getByLabel("Room", { exact: true }).fill(name);
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await eventually(
    async () => assert.equal(await page.locator("#conversation-title").textContent(), `#${name}`),
    `${page.nick} is in ${name}`,
  );
}

export async function send(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.getByRole("button", { name: "Send", exact: true }).click();
}

/// The texts of the messages in the log, top to bottom.
export function texts(page) {
  return page.getByRole("log").locator("li.message .text").allTextContents();
}

export function message(page, text) {
  return page.getByRole("log").locator("li.message", { has: page.locator(".text", { hasText: text }) });
}

export async function seesInOrder(page, expected, what) {
  await eventually(async () => {
    const shown = (await texts(page)).filter((text) => expected.includes(text));
    assert.deepEqual(shown, expected);
  }, `${page.nick} sees ${what}`);
}

export async function alertText(page) {
  const alert = page.getByRole("alert");
  await alert.waitFor({ state: "visible", timeout: WAIT_MS });
  return (await alert.textContent()).replace(/\s+/g, " ").trim();
}

export async function screenshot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`) });
}

