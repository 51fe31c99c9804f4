// Types and calls for the web_drop HTTP API (JSON in camelCase, money as
// decimal strings, times as RFC 3339 UTC).

import type { components } from './api.gen';

// The API's shapes come from its OpenAPI document (`openapi.json`, kept equal
// to what the server serves by drop-ws's `openapi_contract` test), turned
// into TypeScript by `npm run gen:api`; CI fails when either is stale.
type Schemas = components['schemas'];

/**
 * A buyer's public name. `displayName` is the name; `username` is its
 * deprecated alias (same value). Both are absent when the server hides
 * buyers' names.
 */
export type PublicName = Pick<Schemas['TopPurchaserView'], 'displayName' | 'username'>;

/** The signed-in buyer. Its id is opaque and random per sign-in: two sign-ins with one name are two buyers. */
export type Buyer = Schemas['BuyerView'];

/**
 * The answer of `GET /api/session` and `POST /api/session`. The sign-in
 * answer also carries the session token, which `signIn` drops at once: the
 * HttpOnly cookie set with it is what identifies the browser.
 */
export type Session = Omit<Schemas['SessionView'], 'token'>;

/** One entry of a drop's recent-buyers list. */
export type TopPurchaser = Schemas['TopPurchaserView'];

/**
 * One variant of a drop (a size, a colour) with its live stock. A drop
 * created without variants has exactly one.
 */
export type Variant = Schemas['VariantView'];

/** The caller's active hold on a drop, as listed with the drop: its variant and quantity too. */
export type UserReservation = Schemas['UserHoldView'];

/**
 * A drop with its live stock. Drop-level figures are the sums over its
 * variants; `maxPerBuyer` bounds what one buyer may hold plus have bought;
 * a `paused` drop refuses new holds (holds already made can still be bought).
 */
export type Drop = Schemas['DropView'];

/**
 * How a drop sells: to whoever reserves first, or by a verifiable draw
 * among the buyers who entered before `drawAt`.
 */
export type SaleMode = Schemas['DropView']['mode'];

/** What the draw gave an entry: null before the draw. */
export type EntryOutcome = NonNullable<Schemas['Entry']['outcome']>;

/**
 * The buyer's entry to a draw: one unit of one variant, with the receipt
 * that finds it in the published entry list (hex), its `outcome` and
 * `drawPosition` once drawn, and the hold a win gave (`reservationId`). No
 * buyer id, no name.
 */
export type Entry = Schemas['Entry'];

/**
 * A drop's draw as anyone may read it: the committed seed hash from the
 * start, and after the draw the published draw (seed, entry list, stock,
 * winners) that `drawCheck.ts` parses and recomputes.
 */
export type DrawInfo = Schemas['DrawStatus'];

/**
 * The public frame sent once a drop's draw has happened: counts, no
 * receipts (the fields the page reads of it).
 */
export type DrawCompletedFrame = Pick<
  Extract<WsMessage, { type: 'drawCompleted' }>,
  'type' | 'dropId' | 'drawnAt' | 'entries' | 'winners' | 'waiting'
>;

/** A hold on units of one variant. */
export type Reservation = Schemas['ReservationView'];

/** A purchase record: completed, or cancelled by the shop. */
export type Purchase = Schemas['PurchaseView'];

/** One page of the caller's purchases, newest first; `nextBefore` asks for the next (older) page. */
export type PurchasePage = Schemas['PurchasePage'];

/** Per-variant stock as stock frames carry it. */
export type VariantStock = Schemas['VariantStockView'];

/**
 * One entry of the event log (`GET /api/admin/events`): a committed change
 * with its number (`seq`), when it committed (`at`) and its drop, tagged by
 * `type`. Buyers appear by id, with the display name they held under where
 * the entry has it.
 */
export type LogEntry = Schemas['LogEntryView'];

/**
 * One page of the event log, oldest first. Pass `next` as `after` for the
 * next page; `more` says whether entries after it were already there.
 */
export type EventPage = Schemas['EventPage'];

/** A message on the live feed (`GET /api/ws`). */
export type WsMessage = Schemas['WsMessage'];

/** The `purchase` frame. */
export type PurchaseFrame = Extract<WsMessage, { type: 'purchase' }>;

/**
 * A frame only the signed-in buyer's own sockets receive: their hold ended
 * (ran out, given back, or bought), possibly from another tab or device.
 */
export type HoldEndedFrame = Extract<WsMessage, { type: 'holdExpired' | 'holdReleased' | 'holdPurchased' }>;

/** The state of a hold. */
export type ReservationStatus = Schemas['ReservationView']['status'];

/**
 * What the admin form sends to create a drop. Numbers the form could not
 * read as numbers are sent as typed, so the server's validation explains
 * them by field.
 */
export type NewDrop = Omit<Schemas['CreateDropBody'], 'totalStock' | 'maxPerBuyer' | 'holdSeconds' | 'waitlist'> & {
  totalStock?: number | string;
  maxPerBuyer?: number | string;
  holdSeconds?: number | string | null;
  /** Whether buyers may wait in line for sold-out sizes; the server's default is yes. */
  waitlist?: boolean;
};

/**
 * An admin edit of a drop: only the fields present change. `startsAt` and
 * `endsAt` set to null remove the time; `totalStock` is for one-variant
 * drops, `variants` sets the stock of the variants it names.
 */
export type DropPatch = Schemas['PatchDropBody'];

/** What one reserve asks for (`variantId` is required when the drop has more than one). */
export type ReserveRequest = Schemas['ReserveBody'];

/**
 * The buyer's place in the waiting line of one variant of a drop: how many
 * units they wait for, their `ticket` (orders the line, never reused), their
 * `position` (1 for the head) and the units already `setAside` for them.
 */
export type WaitlistPlace = Schemas['WaitlistPlace'];

/** What joining a line asks for: the variant (required when the drop has more than one) and how many. */
export interface JoinRequest {
  variantId?: string;
  quantity?: number;
}

/**
 * A frame only the signed-in buyer's own sockets receive: a unit freed up
 * and is now theirs as a hold offered from the line.
 */
export type HoldOfferedFrame = Extract<WsMessage, { type: 'holdOffered' }>;

/**
 * The frames about waiting lines: the buyer's own joins and leaves (private)
 * and someone leaving a line (public: those behind them move up).
 */
export type WaitlistFrame = Extract<WsMessage, { type: 'waitlistJoined' | 'waitlistLeft' | 'waitlistMoved' }>;

/** Why a buyer left a line: they left, their turn came (`offered`), or their turn came and they were `skipped`. */
export type LeaveReason = Extract<WsMessage, { type: 'waitlistLeft' }>['reason'];

/**
 * An error answer of the API, or a failure to reach it (`NETWORK`) or to
 * read its answer (`BAD_RESPONSE`).
 */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;
  /** The whole error body, for codes that carry more (`HOLD_EXISTS` has the existing hold). */
  readonly body: unknown;
  /** Seconds the server asked to wait (`Retry-After`), when it said. */
  retryAfter: number | undefined;

  constructor(code: string, message: string, status: number, field?: string, body?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.field = field;
    this.body = body;
  }
}

// Fields the drop form has; used to find the field an INVALID_INPUT
// message names when the body carries no `field` key.
const FORM_FIELDS = [
  'name',
  'price',
  'totalStock',
  'variants',
  'maxPerBuyer',
  'startsAt',
  'endsAt',
  'holdSeconds',
  'mode',
  'drawAt',
  'beaconName',
  'quantity',
  'username',
];

function fieldFromMessage(message: string): string | undefined {
  const named = /invalid (\w+)/i.exec(message)?.[1];
  if (named && FORM_FIELDS.includes(named)) return named;
  return FORM_FIELDS.find((f) => new RegExp(`\\b${f}\\b`).test(message));
}

// When the body is not the API's JSON error (a proxy page, an empty 413),
// the status still says enough to explain it in plain words.
function codeForStatus(status: number): string {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'FORBIDDEN';
  if (status === 404) return 'NOT_FOUND';
  if (status === 413) return 'PAYLOAD_TOO_LARGE';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 503) return 'UNAVAILABLE';
  if (status >= 500) return 'INTERNAL';
  return 'BAD_RESPONSE';
}

/** A successful answer with its HTTP status (201 vs 200 matters for reserve). */
export interface Answer<T> {
  status: number;
  data: T;
  /** The server answered from its idempotency record: the action had already happened. */
  replayed: boolean;
}

/**
 * A fresh `Idempotency-Key`: 128 random bits in hex. `crypto.randomUUID`
 * exists only in secure contexts; `getRandomValues` works on plain HTTP too.
 */
export function newIdempotencyKey(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Answers after which the same request may be sent again with the same key:
// nothing happened (no answer, busy server) or the first try is still
// running. The key makes the retry safe: a write that did happen is
// answered from the record instead of acting twice.
const RETRY_CODES = new Set(['NETWORK', 'UNAVAILABLE', 'IDEMPOTENCY_IN_PROGRESS']);
/** Tries of one write (the first and its retries). */
export const WRITE_TRIES = 3;

function retryDelayMs(err: ApiError, attempt: number): number {
  const after = err.retryAfter;
  if (after !== undefined) return Math.min(5_000, after * 1000);
  return 250 * 2 ** attempt;
}

type UnauthenticatedListener = (err: ApiError) => void;
const unauthenticatedListeners = new Set<UnauthenticatedListener>();

/**
 * Calls `listener` whenever a buyer route answers 401 `UNAUTHENTICATED`: the
 * session ran out or was ended, wherever the call came from. Returns the
 * function that stops listening.
 */
export function onUnauthenticated(listener: UnauthenticatedListener): () => void {
  unauthenticatedListeners.add(listener);
  return () => {
    unauthenticatedListeners.delete(listener);
  };
}

interface CallOptions {
  body?: unknown;
  /**
   * The user action's idempotency key: sent as `Idempotency-Key` and kept for
   * every retry of this call.
   */
  idempotencyKey?: string;
  /** The admin bearer token (buyers are identified by the session cookie). */
  token?: string;
  /**
   * The session routes answer 401 as a plain "not signed in"; only other
   * routes tell the listeners that a session was lost.
   */
  sessionRoute?: boolean;
}

let sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Replaces the wait between retries (unit tests run them without waiting). */
export function setRetrySleep(fn: (ms: number) => Promise<void>): void {
  sleep = fn;
}

async function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<Answer<T>> {
  if (opts.idempotencyKey === undefined) return callOnce(method, path, opts);
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await callOnce<T>(method, path, opts);
    } catch (e) {
      if (!(e instanceof ApiError) || !RETRY_CODES.has(e.code) || attempt + 1 >= WRITE_TRIES) throw e;
      await sleep(retryDelayMs(e, attempt));
    }
  }
}

async function callOnce<T>(method: string, path: string, opts: CallOptions): Promise<Answer<T>> {
  const { body, token } = opts;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  if (opts.idempotencyKey !== undefined) headers['Idempotency-Key'] = opts.idempotencyKey;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      // The session cookie goes with every call to this origin, and only there.
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError('NETWORK', 'The server could not be reached.', 0);
  }
  const text = await res.text();
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  if (!res.ok) {
    const err = (json ?? {}) as { error?: unknown; message?: unknown; field?: unknown };
    const code = typeof err.error === 'string' ? err.error : codeForStatus(res.status);
    const message = typeof err.message === 'string' ? err.message : res.statusText;
    const field =
      typeof err.field === 'string'
        ? err.field
        : code === 'INVALID_INPUT'
          ? fieldFromMessage(message)
          : undefined;
    const error = new ApiError(code, message, res.status, field, json);
    const retryAfter = Number(res.headers.get('Retry-After'));
    if (res.headers.has('Retry-After') && Number.isFinite(retryAfter)) error.retryAfter = retryAfter;
    if (code === 'UNAUTHENTICATED' && !opts.sessionRoute) for (const l of unauthenticatedListeners) l(error);
    throw error;
  }
  if (json === undefined && res.status !== 204) {
    throw new ApiError('BAD_RESPONSE', 'The server sent an answer the page cannot read.', res.status);
  }
  return { status: res.status, data: json as T, replayed: res.headers.get('Idempotent-Replayed') === 'true' };
}

/** Signs in as a guest named `username`; the answer sets the session cookie. */
export async function signIn(username: string): Promise<Answer<Session>> {
  const { status, data, replayed } = await call<Session & { token?: unknown }>('POST', '/api/session', {
    body: { username },
    sessionRoute: true,
  });
  // Keep only what the page shows; the token stays in the HttpOnly cookie.
  return { status, data: { buyer: data.buyer, expiresAt: data.expiresAt }, replayed };
}

/** Who this browser is signed in as; 401 `UNAUTHENTICATED` when nobody. */
export function getSession(): Promise<Answer<Session>> {
  return call('GET', '/api/session', { sessionRoute: true });
}

/** Signs out: the server revokes the session and clears the cookie (204). */
export function signOut(): Promise<Answer<void>> {
  return call('DELETE', '/api/session', { sessionRoute: true });
}

/** Live and upcoming drops, each with the signed-in buyer's active hold and place in line. */
export function listDrops(): Promise<Answer<Drop[]>> {
  return call('GET', '/api/drops');
}

/**
 * Holds units of one variant: 201 with a new hold, 200 with the caller's
 * existing one when it asked for the same; 409 `HOLD_EXISTS` (the error's
 * `body.reservation` is the existing hold) when it asked for something else.
 */
export function reserve(req: ReserveRequest, idempotencyKey = newIdempotencyKey()): Promise<Answer<Reservation>> {
  const body: ReserveRequest = { dropId: req.dropId };
  if (req.variantId !== undefined) body.variantId = req.variantId;
  if (req.quantity !== undefined) body.quantity = req.quantity;
  return call('POST', '/api/reservations', { body, idempotencyKey });
}

/**
 * Joins the line of a sold-out variant: 201 with the new place, 200 with the
 * caller's place when they already wait for the same. 409
 * `WAITLIST_NOT_NEEDED` when a unit is free (reserve instead),
 * `ALREADY_IN_LINE` (the error's `body.place`) when they wait for something
 * else of the drop, `HOLD_EXISTS` (`body.reservation`) when they hold units of it.
 */
export function joinWaitlist(dropId: string, req: JoinRequest, idempotencyKey = newIdempotencyKey()): Promise<Answer<WaitlistPlace>> {
  const body: JoinRequest = {};
  if (req.variantId !== undefined) body.variantId = req.variantId;
  if (req.quantity !== undefined) body.quantity = req.quantity;
  // Joining twice answers the same place, so a retry with the key is safe either way.
  return call('POST', `/api/drops/${encodeURIComponent(dropId)}/waitlist`, { body, idempotencyKey });
}

/** The caller's place in a line of the drop, or null when they wait in none. */
export async function getWaitlistPlace(dropId: string): Promise<WaitlistPlace | null> {
  const { data } = await call<{ place?: WaitlistPlace | null }>('GET', `/api/drops/${encodeURIComponent(dropId)}/waitlist`);
  return data.place ?? null;
}

/** Leaves the caller's line of the drop (204, also when they were not in one). */
export function leaveWaitlist(dropId: string): Promise<Answer<void>> {
  return call('DELETE', `/api/drops/${encodeURIComponent(dropId)}/waitlist`);
}

/** Reads one of the caller's holds back (after a page refresh). */
export function getReservation(id: string): Promise<Answer<Reservation>> {
  return call('GET', `/api/reservations/${encodeURIComponent(id)}`);
}

/** The owner gives a hold back. */
export function release(id: string): Promise<Answer<Reservation | null>> {
  return call('DELETE', `/api/reservations/${encodeURIComponent(id)}`);
}

/**
 * Turns one of the caller's holds into a purchase: 201, or 200 with the same
 * purchase when it was already bought (an answer lost on the way).
 */
export function purchase(reservationId: string, idempotencyKey = newIdempotencyKey()): Promise<Answer<Purchase>> {
  return call('POST', '/api/purchases', { body: { reservationId }, idempotencyKey });
}

/** One of the caller's purchases (another buyer's answers 404). */
export function getPurchase(id: string): Promise<Answer<Purchase>> {
  return call('GET', `/api/purchases/${encodeURIComponent(id)}`);
}

/** A page of the caller's purchases, newest first; `before` is the previous page's `nextBefore`. */
export function myPurchases(opts: { before?: string | null; limit?: number } = {}): Promise<Answer<PurchasePage>> {
  const q = new URLSearchParams();
  if (opts.before) q.set('before', opts.before);
  if (opts.limit !== undefined) q.set('limit', String(opts.limit));
  const query = q.toString();
  return call('GET', `/api/me/purchases${query ? `?${query}` : ''}`);
}

/** Creates a drop (needs the admin token). */
export function createDrop(input: NewDrop, token: string, idempotencyKey = newIdempotencyKey()): Promise<Answer<Drop>> {
  return call('POST', '/api/drops', { body: input, token, idempotencyKey });
}

/** Every drop, ended ones too (admin). */
export function adminDrops(token: string): Promise<Answer<Drop[]>> {
  return call('GET', '/api/admin/drops', { token });
}

/** Edits a drop (admin); the answer is the drop as it now is. */
export function patchDrop(
  id: string,
  patch: DropPatch,
  token: string,
  idempotencyKey = newIdempotencyKey(),
): Promise<Answer<Drop>> {
  return call('PATCH', `/api/admin/drops/${encodeURIComponent(id)}`, { body: patch, token, idempotencyKey });
}

/** The admin's drop operations without a body. */
export type DropOperation = 'pause' | 'resume' | 'end';

/** Pauses, resumes or ends a drop now (admin); pausing a paused drop changes nothing. */
export function dropOperation(
  id: string,
  op: DropOperation,
  token: string,
  idempotencyKey = newIdempotencyKey(),
): Promise<Answer<Drop>> {
  return call('POST', `/api/admin/drops/${encodeURIComponent(id)}/${op}`, { token, idempotencyKey });
}

/** Cancels a purchase (admin): its units go back on sale, or to the waiting line. */
export function cancelPurchase(id: string, token: string, idempotencyKey = newIdempotencyKey()): Promise<Answer<Purchase>> {
  return call('POST', `/api/admin/purchases/${encodeURIComponent(id)}/cancel`, { token, idempotencyKey });
}

/**
 * A page of the event log, oldest first (needs the admin token): entries
 * numbered above `after` (0: from the start), at most `limit` (1–1000,
 * server default 100), only `dropId`'s when given (404 `DROP_NOT_FOUND` for
 * an unknown drop; 410 `EVENTS_PRUNED` when entries above `after` are gone).
 */
export function adminEvents(
  token: string,
  opts: { after?: number; limit?: number; dropId?: string } = {},
): Promise<Answer<EventPage>> {
  const q = new URLSearchParams();
  if (opts.after !== undefined) q.set('after', String(opts.after));
  if (opts.limit !== undefined) q.set('limit', String(opts.limit));
  if (opts.dropId) q.set('dropId', opts.dropId);
  const query = q.toString();
  return call('GET', `/api/admin/events${query ? `?${query}` : ''}`, { token });
}

/**
 * Enters the drop's draw for one unit of a variant: 201 with the new entry,
 * 200 with the caller's existing one (entering twice changes nothing). 409
 * `ENTRIES_CLOSED` after `drawAt`, `NOT_A_DRAW` on a first-come drop.
 */
export function enterDraw(dropId: string, variantId: string | undefined, idempotencyKey = newIdempotencyKey()): Promise<Answer<Entry>> {
  const body: { variantId?: string } = {};
  if (variantId !== undefined) body.variantId = variantId;
  return call('POST', `/api/drops/${encodeURIComponent(dropId)}/entries`, { body, idempotencyKey });
}

/** The caller's entry to the drop's draw, or null when they have none. */
export async function getEntry(dropId: string): Promise<Entry | null> {
  const { data } = await call<{ entry?: Entry | null }>('GET', `/api/drops/${encodeURIComponent(dropId)}/entries`);
  return data.entry ?? null;
}

/** Withdraws the caller's entry (204); 409 `ENTRIES_CLOSED` once `drawAt` has come. */
export function withdrawEntry(dropId: string): Promise<Answer<void>> {
  return call('DELETE', `/api/drops/${encodeURIComponent(dropId)}/entries`);
}

/** The drop's draw as anyone may read it: the seed hash, and after the draw what it published. */
export function getDraw(dropId: string): Promise<Answer<DrawInfo>> {
  return call('GET', `/api/drops/${encodeURIComponent(dropId)}/draw`);
}
