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

/** A drop with its live stock. */
export type Drop = Schemas['DropView'];

/** A hold on one unit. */
export type Reservation = Schemas['ReservationView'];

/** A completed purchase. */
export type Purchase = Schemas['PurchaseView'];

/** A message on the live feed (`GET /api/ws`). */
export type WsMessage = Schemas['WsMessage'];

/** The `purchase` frame. */
export type PurchaseFrame = Extract<WsMessage, { type: 'purchase' }>;

/**
 * A frame only the signed-in buyer's own sockets receive: their hold ended
 * (ran out, given back, or bought), possibly from another tab or device.
 */
export type HoldEndedFrame = Extract<WsMessage, { type: 'holdExpired' | 'holdReleased' | 'holdPurchased' }>;

/** The caller's active hold on a drop, as listed with the drop. */
export type UserReservation = Schemas['UserHoldView'];

/** The state of a hold. */
export type ReservationStatus = Schemas['ReservationView']['status'];

/** What the admin form sends to create a drop. */
export interface NewDrop {
  name: string;
  price: string;
  totalStock: number | string;
  startsAt?: string;
  endsAt?: string;
  holdSeconds?: number | string;
}

/**
 * An error answer of the API, or a failure to reach it (`NETWORK`) or to
 * read its answer (`BAD_RESPONSE`).
 */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field: string | undefined;

  constructor(code: string, message: string, status: number, field?: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.field = field;
  }
}

// Fields the drop form has; used to find the field an INVALID_INPUT
// message names when the body carries no `field` key.
const FORM_FIELDS = ['name', 'price', 'totalStock', 'startsAt', 'endsAt', 'holdSeconds', 'username'];

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
  /** The admin bearer token (buyers are identified by the session cookie). */
  token?: string;
  /**
   * The session routes answer 401 as a plain "not signed in"; only other
   * routes tell the listeners that a session was lost.
   */
  sessionRoute?: boolean;
}

async function call<T>(method: string, path: string, opts: CallOptions = {}): Promise<Answer<T>> {
  const { body, token } = opts;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
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
    const error = new ApiError(code, message, res.status, field);
    if (code === 'UNAUTHENTICATED' && !opts.sessionRoute) for (const l of unauthenticatedListeners) l(error);
    throw error;
  }
  if (json === undefined && res.status !== 204) {
    throw new ApiError('BAD_RESPONSE', 'The server sent an answer the page cannot read.', res.status);
  }
  return { status: res.status, data: json as T };
}

/** Signs in as a guest named `username`; the answer sets the session cookie. */
export async function signIn(username: string): Promise<Answer<Session>> {
  const { status, data } = await call<Session & { token?: unknown }>('POST', '/api/session', {
    body: { username },
    sessionRoute: true,
  });
  // Keep only what the page shows; the token stays in the HttpOnly cookie.
  return { status, data: { buyer: data.buyer, expiresAt: data.expiresAt } };
}

/** Who this browser is signed in as; 401 `UNAUTHENTICATED` when nobody. */
export function getSession(): Promise<Answer<Session>> {
  return call('GET', '/api/session', { sessionRoute: true });
}

/** Signs out: the server revokes the session and clears the cookie (204). */
export function signOut(): Promise<Answer<void>> {
  return call('DELETE', '/api/session', { sessionRoute: true });
}

/** Live and upcoming drops, each with the signed-in buyer's active hold. */
export function listDrops(): Promise<Answer<Drop[]>> {
  return call('GET', '/api/drops');
}

/** Reserves one unit: 201 with a new hold, 200 with the caller's existing one. */
export function reserve(dropId: string): Promise<Answer<Reservation>> {
  return call('POST', '/api/reservations', { body: { dropId } });
}

/** Reads one of the caller's holds back (after a page refresh). */
export function getReservation(id: string): Promise<Answer<Reservation>> {
  return call('GET', `/api/reservations/${encodeURIComponent(id)}`);
}

/** The owner gives a hold back. */
export function release(id: string): Promise<Answer<Reservation | null>> {
  return call('DELETE', `/api/reservations/${encodeURIComponent(id)}`);
}

/** Turns one of the caller's holds into a purchase. */
export function purchase(reservationId: string): Promise<Answer<Purchase>> {
  return call('POST', '/api/purchases', { body: { reservationId } });
}

/** Creates a drop (needs the admin token). */
export function createDrop(input: NewDrop, token: string): Promise<Answer<Drop>> {
  return call('POST', '/api/drops', { body: input, token });
}
