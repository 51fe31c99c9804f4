import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from './api';
import { ApiError } from './api';

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
  credentials: RequestCredentials | undefined;
}

// Answers every request with `status` and `body` (JSON) and records what the
// page sent. Node has no page origin to fetch relative paths against, so the
// network boundary is replaced; the answers are real `Response`s.
function answer(status: number, body?: unknown): Sent[] {
  const sent: Sent[] = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    sent.push({
      url,
      method: init.method ?? 'GET',
      headers: { ...(init.headers as Record<string, string>) },
      body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body,
      credentials: init.credentials,
    });
    const text = body === undefined ? null : JSON.stringify(body);
    return new Response(text, { status, headers: text ? { 'Content-Type': 'application/json' } : {} });
  });
  return sent;
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('the call succeeded');
}

const LOST = { error: 'UNAUTHENTICATED', message: 'sign in first' };

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the 401 path', () => {
  it('a buyer route answering 401 UNAUTHENTICATED throws it and tells every listener', async () => {
    answer(401, LOST);
    const heard: string[] = [];
    const stop = api.onUnauthenticated((e) => heard.push(`${e.status} ${e.code}`));
    try {
      const err = await failure(api.reserve({ dropId: 'd1' }));
      expect(err).toMatchObject({ code: 'UNAUTHENTICATED', status: 401, message: 'sign in first' });
      await failure(api.purchase('r1'));
      await failure(api.release('r1'));
      await failure(api.getReservation('r1'));
      await failure(api.listDrops());
      expect(heard).toEqual(Array(5).fill('401 UNAUTHENTICATED'));
    } finally {
      stop();
    }
  });

  it('GET /api/session answering 401 means "not signed in", not a lost session', async () => {
    answer(401, LOST);
    const heard = vi.fn();
    const stop = api.onUnauthenticated(heard);
    try {
      expect(await failure(api.getSession())).toMatchObject({ code: 'UNAUTHENTICATED', status: 401 });
      expect(heard).not.toHaveBeenCalled();
    } finally {
      stop();
    }
  });

  it('a wrong admin token (401 UNAUTHORIZED) is not a lost session', async () => {
    answer(401, { error: 'UNAUTHORIZED', message: 'bad token' });
    const heard = vi.fn();
    const stop = api.onUnauthenticated(heard);
    try {
      await failure(api.createDrop({ name: 'x', price: '1', totalStock: 1 }, 'wrong'));
      expect(heard).not.toHaveBeenCalled();
    } finally {
      stop();
    }
  });

  it('a listener that stopped listening hears nothing more', async () => {
    answer(401, LOST);
    const heard = vi.fn();
    api.onUnauthenticated(heard)();
    await failure(api.reserve({ dropId: 'd1' }));
    expect(heard).not.toHaveBeenCalled();
  });
});

describe('buyer calls', () => {
  it('name no buyer: the session cookie does', async () => {
    const sent = answer(200, {});
    await api.listDrops();
    await api.reserve({ dropId: 'd1' });
    await api.purchase('r1');
    await api.release('r1');
    expect(sent.map((s) => [s.method, s.url, s.body])).toEqual([
      ['GET', '/api/drops', undefined],
      ['POST', '/api/reservations', { dropId: 'd1' }],
      ['POST', '/api/purchases', { reservationId: 'r1' }],
      ['DELETE', '/api/reservations/r1', undefined],
    ]);
    for (const s of sent) {
      expect(s.credentials).toBe('same-origin');
      expect(s.headers.Authorization).toBeUndefined();
    }
    // A JSON Content-Type goes with a body only.
    expect(sent.map((s) => s.headers['Content-Type'])).toEqual([
      undefined,
      'application/json',
      'application/json',
      undefined,
    ]);
  });

  it('sign-in sends the username as JSON and hands back no token', async () => {
    const session = {
      buyer: { id: 'g_2f1c', displayName: 'alice' },
      token: 'secret-token',
      expiresAt: '2026-12-08T10:00:00Z',
    };
    const sent = answer(200, session);
    const { data } = await api.signIn('alice');
    expect(data).toEqual({ buyer: session.buyer, expiresAt: session.expiresAt });
    expect(JSON.stringify(data)).not.toContain('secret-token');
    expect(sent[0]).toMatchObject({
      method: 'POST',
      url: '/api/session',
      body: { username: 'alice' },
      headers: { 'Content-Type': 'application/json' },
    });
  });

  it('sign-out is a DELETE without a body, and its 204 is a success', async () => {
    const sent = answer(204);
    expect(await api.signOut()).toEqual({ status: 204, data: undefined, replayed: false });
    expect(sent[0]).toMatchObject({ method: 'DELETE', url: '/api/session', body: undefined });
  });
});

// Answers each request with the next of `answers` (the last one repeats).
function answerInTurn(answers: { status: number; body?: unknown; headers?: Record<string, string> }[]): Sent[] {
  const sent: Sent[] = [];
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    sent.push({
      url,
      method: init.method ?? 'GET',
      headers: { ...(init.headers as Record<string, string>) },
      body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body,
      credentials: init.credentials,
    });
    const a = answers[Math.min(sent.length - 1, answers.length - 1)];
    if (!a) throw new TypeError('no answer');
    if (a.status === 0) throw new TypeError('Failed to fetch');
    const text = a.body === undefined ? null : JSON.stringify(a.body);
    return new Response(text, { status: a.status, headers: { ...(text ? { 'Content-Type': 'application/json' } : {}), ...a.headers } });
  });
  return sent;
}

describe('idempotency keys', () => {
  const waits: number[] = [];
  beforeEach(() => {
    waits.length = 0;
    api.setRetrySleep(async (ms) => {
      waits.push(ms);
    });
  });

  it('every write carries a fresh key; reads and sign-in carry none', async () => {
    const sent = answer(200, {});
    await api.reserve({ dropId: 'd1', variantId: 'v1', quantity: 2 });
    await api.reserve({ dropId: 'd1' });
    await api.purchase('r1');
    await api.patchDrop('d1', { name: 'New' }, 'tok');
    await api.dropOperation('d1', 'pause', 'tok');
    await api.cancelPurchase('p1', 'tok');
    await api.listDrops();
    await api.signIn('alice');
    const keys = sent.map((s) => s.headers['Idempotency-Key']);
    const writes = keys.slice(0, 6);
    for (const k of writes) expect(k).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(writes).size).toBe(6);
    expect(keys.slice(6)).toEqual([undefined, undefined]);
    expect(sent[0]?.body).toEqual({ dropId: 'd1', variantId: 'v1', quantity: 2 });
    expect(sent.slice(3, 6).map((s) => [s.method, s.url, s.headers.Authorization])).toEqual([
      ['PATCH', '/api/admin/drops/d1', 'Bearer tok'],
      ['POST', '/api/admin/drops/d1/pause', 'Bearer tok'],
      ['POST', '/api/admin/purchases/p1/cancel', 'Bearer tok'],
    ]);
  });

  it('a write that got no answer is retried with the same key, and the replay is reported', async () => {
    const purchase = { id: 'p1', reservationId: 'r1' };
    const sent = answerInTurn([
      { status: 0 },
      { status: 503, body: { error: 'UNAVAILABLE', message: 'busy' }, headers: { 'Retry-After': '1' } },
      { status: 200, body: purchase, headers: { 'Idempotent-Replayed': 'true' } },
    ]);
    const res = await api.purchase('r1', 'key-1');
    expect(res).toEqual({ status: 200, data: purchase, replayed: true });
    expect(sent.map((s) => s.headers['Idempotency-Key'])).toEqual(['key-1', 'key-1', 'key-1']);
    expect(waits).toEqual([250, 1000]);
  });

  it('gives up after its tries, and never retries a definite refusal', async () => {
    const busy = answerInTurn([{ status: 409, body: { error: 'IDEMPOTENCY_IN_PROGRESS', message: 'running' } }]);
    expect((await failure(api.reserve({ dropId: 'd1' }))).code).toBe('IDEMPOTENCY_IN_PROGRESS');
    expect(busy).toHaveLength(api.WRITE_TRIES);

    const refused = answerInTurn([{ status: 409, body: { error: 'OUT_OF_STOCK', message: 'none left' } }]);
    expect((await failure(api.reserve({ dropId: 'd1' }))).code).toBe('OUT_OF_STOCK');
    expect(refused).toHaveLength(1);
  });

  it('HOLD_EXISTS keeps the existing hold from the error body', async () => {
    const reservation = { id: 'r9', dropId: 'd1', variantId: 'v2', quantity: 1, status: 'active' };
    answer(409, { error: 'HOLD_EXISTS', message: 'you hold another size', reservation });
    const err = await failure(api.reserve({ dropId: 'd1', variantId: 'v1' }));
    expect(err.code).toBe('HOLD_EXISTS');
    expect((err.body as { reservation: unknown }).reservation).toEqual(reservation);
  });

  it('reads purchases: one by id, and the list a page at a time with before and limit', async () => {
    const sent = answer(200, { purchases: [], nextBefore: null });
    await api.getPurchase('p/1');
    await api.myPurchases();
    await api.myPurchases({ before: '0b7f4c1e-2f4a-4c59-9a51-1d1b6b0e7a10', limit: 10 });
    expect(sent.map((s) => [s.method, s.url, s.headers['Idempotency-Key']])).toEqual([
      ['GET', '/api/purchases/p%2F1', undefined],
      ['GET', '/api/me/purchases', undefined],
      ['GET', '/api/me/purchases?before=0b7f4c1e-2f4a-4c59-9a51-1d1b6b0e7a10&limit=10', undefined],
    ]);
  });

  it('reads the event log with the admin token, after a seq, a page size and a drop', async () => {
    const sent = answer(200, { events: [], next: 7, more: false, head: 7 });
    const page = await api.adminEvents('tok', { after: 7, limit: 50, dropId: 'd1' });
    await api.adminEvents('tok');
    expect(page.data.next).toBe(7);
    expect(sent.map((s) => [s.method, s.url, s.headers.Authorization])).toEqual([
      ['GET', '/api/admin/events?after=7&limit=50&dropId=d1', 'Bearer tok'],
      ['GET', '/api/admin/events', 'Bearer tok'],
    ]);
  });

  it('EVENTS_PRUNED keeps the oldest entry kept from the error body', async () => {
    answer(410, { error: 'EVENTS_PRUNED', message: 'pruned', oldest: 42 });
    const err = await failure(api.adminEvents('tok', { after: 3 }));
    expect([err.status, err.code]).toEqual([410, 'EVENTS_PRUNED']);
    expect((err.body as { oldest: number }).oldest).toBe(42);
  });
});

describe('draw calls', () => {
  it('enter with the variant and a key, read the entry back, withdraw, and read the draw', async () => {
    const entry = { dropId: 'd1', variantId: 'v1', receipt: 'ab'.repeat(16), enteredAt: '2030-01-01T00:00:00Z', outcome: null };
    const sent = answer(201, entry);
    const { status, data } = await api.enterDraw('d1', 'v1');
    expect([status, data]).toEqual([201, entry]);
    await api.enterDraw('d 2', undefined);
    expect(sent.map((s) => [s.method, s.url, s.body])).toEqual([
      ['POST', '/api/drops/d1/entries', { variantId: 'v1' }],
      ['POST', '/api/drops/d%202/entries', {}],
    ]);
    expect(sent[0]?.headers['Idempotency-Key']).toMatch(/^[0-9a-f]{32}$/);

    answer(200, { entry });
    expect(await api.getEntry('d1')).toEqual(entry);
    answer(200, { entry: null });
    expect(await api.getEntry('d1')).toBeNull();

    const gone = answer(204);
    await api.withdrawEntry('d1');
    expect(gone.map((s) => [s.method, s.url, s.body])).toEqual([['DELETE', '/api/drops/d1/entries', undefined]]);

    const draw = answer(200, { dropId: 'd1', drawAt: '2030-01-01T00:00:00Z', seedHash: 'cd'.repeat(32), published: null });
    expect((await api.getDraw('d1')).data.seedHash).toBe('cd'.repeat(32));
    expect(draw[0]?.url).toBe('/api/drops/d1/draw');
  });

  it('ENTRIES_CLOSED is a plain refusal, not retried', async () => {
    const sent = answer(409, { error: 'ENTRIES_CLOSED', message: 'entries are closed' });
    const err = await failure(api.enterDraw('d1', 'v1'));
    expect(err).toMatchObject({ code: 'ENTRIES_CLOSED', status: 409 });
    expect(sent).toHaveLength(1);
  });
});
