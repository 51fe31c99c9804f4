// Types and calls for the web_drop HTTP API (JSON in camelCase, money as
// decimal strings, times as RFC 3339 UTC).

import type { components } from './api.gen';

// The API's shapes come from its OpenAPI document (`openapi.json`, kept equal
// to what the server serves by drop-ws's `openapi_contract` test), turned
// into TypeScript by `npm run gen:api`; CI fails when either is stale.
type Schemas = components['schemas'];

/** One entry of a drop's recent-buyers list. */
export type TopPurchaser = Schemas['TopPurchaserView'];

/** The caller's active hold on a drop, as listed with the drop. */
export type UserReservation = Schemas['UserHoldView'];

/** A drop with its live stock. */
export type Drop = Schemas['DropView'];

/** The state of a hold. */
export type ReservationStatus = Schemas['ReservationView']['status'];

/** A hold on one unit. */
export type Reservation = Schemas['ReservationView'];

/** A completed purchase. */
export type Purchase = Schemas['PurchaseView'];

/** A message on the live feed (`GET /api/ws`). */
export type WsMessage = Schemas['WsMessage'];

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

async function call<T>(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<Answer<T>> {
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
    throw new ApiError(code, message, res.status, field);
  }
  if (json === undefined && res.status !== 204) {
    throw new ApiError('BAD_RESPONSE', 'The server sent an answer the page cannot read.', res.status);
  }
  return { status: res.status, data: json as T };
}

/** Live and upcoming drops, with `username`'s active holds. */
export function listDrops(username?: string): Promise<Answer<Drop[]>> {
  const q = username ? `?username=${encodeURIComponent(username)}` : '';
  return call<Drop[]>('GET', `/api/drops${q}`);
}

/** Reserves one unit: 201 with a new hold, 200 with the caller's existing one. */
export function reserve(dropId: string, username: string): Promise<Answer<Reservation>> {
  return call('POST', '/api/reservations', { dropId, username });
}

/** Reads a hold back (after a page refresh). */
export function getReservation(id: string): Promise<Answer<Reservation>> {
  return call('GET', `/api/reservations/${encodeURIComponent(id)}`);
}

/** The owner gives a hold back. */
export function release(id: string, username: string): Promise<Answer<Reservation | null>> {
  const q = `?username=${encodeURIComponent(username)}`;
  return call('DELETE', `/api/reservations/${encodeURIComponent(id)}${q}`, { username });
}

/** Turns a hold into a purchase. */
export function purchase(reservationId: string, username: string): Promise<Answer<Purchase>> {
  return call('POST', '/api/purchases', { reservationId, username });
}

/** Creates a drop (needs the admin token). */
export function createDrop(input: NewDrop, token: string): Promise<Answer<Drop>> {
  return call('POST', '/api/drops', input, token);
}
