import { afterEach, describe, expect, it, vi } from 'vitest';
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
      const err = await failure(api.reserve('d1'));
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
    await failure(api.reserve('d1'));
    expect(heard).not.toHaveBeenCalled();
  });
});

describe('buyer calls', () => {
  it('name no buyer: the session cookie does', async () => {
    const sent = answer(200, {});
    await api.listDrops();
    await api.reserve('d1');
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
    expect(await api.signOut()).toEqual({ status: 204, data: undefined });
    expect(sent[0]).toMatchObject({ method: 'DELETE', url: '/api/session', body: undefined });
  });
});
