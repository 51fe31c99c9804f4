// Shared pieces of the end-to-end tests: the browser, the API calls that
// set a scene up, and lookups into the page by role and label.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** The server under test (run.sh starts it). */
export const BASE = required('WEB_DROP_URL');
/** Its admin token. */
export const TOKEN = required('ADMIN_TOKEN');
/** The default hold it was started with, in seconds. */
export const HOLD_SECONDS = Number(required('HOLD_SECONDS'));

const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(SHOTS, { recursive: true });

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the tests through e2e/run.sh`);
  return v;
}

/** Starts Debian's Chromium (never a downloaded browser). */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

let counter = 0;
/** A name no other test uses, so tests never see each other's drops. */
export function unique(label) {
  counter += 1;
  return `${label} ${Date.now().toString(36)}${counter}`;
}

/** A valid username no other test uses. */
export function user(label) {
  counter += 1;
  return `${label}_${Date.now().toString(36)}${counter}`;
}

/** Creates a drop through the API (as an admin would) and returns it. */
export async function createDrop(body) {
  const res = await fetch(`${BASE}/api/drops`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 201, `create drop: ${JSON.stringify(json)}`);
  return json;
}

/**
 * Signs a new guest in through the API, as a non-browser client would:
 * `{ token, buyer }`, the token to send as `Authorization: Bearer`.
 */
export async function apiSignIn(username) {
  const res = await fetch(`${BASE}/api/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  const json = await res.json();
  assert.equal(res.status, 200, `sign in: ${JSON.stringify(json)}`);
  assert.ok(typeof json.token === 'string' && json.buyer?.id, `sign in answer: ${JSON.stringify(json)}`);
  return { token: json.token, buyer: json.buyer };
}

/**
 * Reserves through the API, as another shopper would: `guest` is an
 * `apiSignIn` answer, or a username to sign a new guest in with; `choice`
 * may name a `variantId` and a `quantity`.
 */
export async function apiReserve(dropId, guest, choice = {}) {
  const { token } = typeof guest === 'string' ? await apiSignIn(guest) : guest;
  const res = await fetch(`${BASE}/api/reservations`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ dropId, ...choice }),
  });
  const json = await res.json();
  assert.ok(res.status === 201 || res.status === 200, `reserve: ${JSON.stringify(json)}`);
  return json;
}

/** Buys a hold through the API as the guest who holds it (an `apiSignIn` answer). */
export async function apiPurchase(reservationId, guest) {
  const res = await fetch(`${BASE}/api/purchases`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${guest.token}` },
    body: JSON.stringify({ reservationId }),
  });
  const json = await res.json();
  assert.equal(res.status, 201, `purchase: ${JSON.stringify(json)}`);
  return json;
}

/**
 * Signs in on the page with the header's form and waits until the header
 * names the user and the live feed is connected again (a new session opens
 * a new socket).
 */
export async function signIn(page, username) {
  await page.getByLabel('Your username').fill(username);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await signedInName(page, username);
  await waitLive(page);
}

/** Waits until the header says the page is signed in as `username`. */
export async function signedInName(page, username, timeout = 5_000) {
  await page
    .getByTestId('signed-in-name')
    .filter({ hasText: new RegExp(`^${username}$`) })
    .waitFor({ timeout });
}

/** Waits until the header offers the sign-in form (nobody signed in). */
export async function signedOut(page, timeout = 5_000) {
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor({ timeout });
}

/**
 * A fresh browser context (its own storage and cookies, like a separate
 * person) with the page open, signed in as `username`, live feed connected.
 */
export async function openAs(browser, username, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = watchErrors(page);
  await page.goto(BASE);
  await signIn(page, username);
  return { context, page, errors, username };
}

/**
 * Collects the page's uncaught errors and console errors. Failed requests
 * are left out: a 401 from `GET /api/session` is how a page learns that
 * nobody is signed in, and the browser logs it.
 */
export function watchErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|ERR_CONNECTION|Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  return errors;
}

/** The hold controls of a card (countdown, Complete Purchase, Release), counted. */
export async function holdControls(page, name) {
  const c = card(page, name);
  return (
    (await c.getByTestId('countdown').count()) +
    (await c.getByRole('button', { name: /^Complete purchase/ }).count()) +
    (await c.getByRole('button', { name: /^Release hold/ }).count())
  );
}

/**
 * Calls the API from inside the page, with the page's own cookies (as a
 * script on the page could): `{ status, body }`.
 */
export async function pageFetch(page, method, path, body) {
  return page.evaluate(
    async ([m, p, b]) => {
      const init = { method: m, headers: {} };
      if (b !== null) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(b);
      }
      const res = await fetch(p, init);
      const text = await res.text();
      let json;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        json = text;
      }
      return { status: res.status, body: json };
    },
    [method, path, body ?? null],
  );
}

/** Waits until the header says the live feed is connected. */
export async function waitLive(page, timeout = 10_000) {
  await page.getByTestId('connection').filter({ hasText: /^Live$/ }).waitFor({ timeout });
}

/** The card of the drop called `name`. */
export function card(page, name) {
  return page.getByRole('article', { name, exact: true });
}

/** Waits until the card's available count reads `n`. */
export async function waitAvailable(page, name, n, timeout = 5_000) {
  await card(page, name)
    .getByTestId('available')
    .filter({ hasText: new RegExp(`^${n}$`) })
    .waitFor({ timeout });
}

/** The card's available count as a number. */
export async function available(page, name) {
  return Number(await card(page, name).getByTestId('available').textContent());
}

/** Seconds left on the card's countdown. */
export async function secondsLeft(page, name) {
  return Number(await card(page, name).getByTestId('countdown').getAttribute('data-seconds'));
}

/** The Reserve button of a card (its label changes to "Sold out", …). */
export function reserveButton(page, name) {
  return card(page, name).getByRole('button', {
    name: /^(Reserve|Reserving…|Sold out|Not started yet|Paused|Limit reached):/,
  });
}

/** The Join the waiting list button a card shows on a sold-out size of a drop with a line. */
export function joinButton(page, name) {
  return card(page, name).getByRole('button', { name: /^(Join the waiting list|Joining…):/ });
}

/** Waits until the card says the buyer's place in line reads `text` ("You are #2 in line"). */
export async function waitPlace(page, name, text, timeout = 5_000) {
  await card(page, name)
    .getByTestId('place')
    .filter({ hasText: new RegExp(`^${text}$`) })
    .waitFor({ timeout });
}

/** A card's size choices (radio buttons named by size, ", sold out" added when disabled). */
export function sizes(page, name) {
  return card(page, name).getByRole('radiogroup', { name: `Size of ${name}` }).getByRole('radio');
}

/** A card's quantity choice. */
export function quantity(page, name) {
  return card(page, name).getByLabel(`Quantity of ${name}`);
}

/** Calls an admin route with the admin token: `{ status, body }`. */
export async function adminFetch(method, path, body) {
  const headers = { Authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Saves a screenshot under e2e/screenshots/. */
export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Polls `fn` until it returns a truthy value or `timeout` ms pass. */
export async function eventually(fn, timeout, what) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/**
 * Calls the API outside any page with the context's cookies (its session),
 * as another device signed in with the same session would: `{ status, body }`.
 * No page's storage changes, so only the server's frames can tell the pages.
 */
export async function sessionFetch(context, method, path, body) {
  const res = await context.request.fetch(`${BASE}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    data: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status(), body: text ? JSON.parse(text) : null };
}
