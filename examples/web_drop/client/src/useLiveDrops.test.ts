import { describe, expect, it } from 'vitest';
import type { Drop, WsMessage } from './api';
import { backoffMs, followSeq, interpretFrame, liveFeedUrl, reducer, type State } from './useLiveDrops';

function drop(id: string, over: Partial<Drop> = {}): Drop {
  return {
    id,
    name: `Drop ${id}`,
    price: '10.00',
    totalStock: 10,
    availableStock: 10,
    reservedStock: 0,
    soldStock: 0,
    startsAt: null,
    endsAt: null,
    holdSeconds: 60,
    topPurchasers: [],
    variants: [{ id: `${id}-v`, name: 'Standard', totalStock: 10, availableStock: 10, reservedStock: 0, soldStock: 0, waitlistLength: 0 }],
    maxPerBuyer: 1,
    paused: false,
    waitlist: true,
    mode: 'firstCome',
    ...over,
  };
}

const empty: State = {
  drops: [],
  fromSnapshot: false,
  loaded: false,
  connection: 'connecting',
  socketKey: null,
  activity: [],
};

const T0 = '2026-01-01T00:00:00Z';

describe('reducer', () => {
  it('lets a snapshot beat an HTTP listing that arrives after it', () => {
    const snap = reducer(empty, { type: 'snapshot', drops: [drop('a', { availableStock: 3 })] });
    const late = reducer(snap, { type: 'list', drops: [drop('a', { availableStock: 9 })] });
    expect(late.drops[0]?.availableStock).toBe(3);
    expect(late.loaded).toBe(true);
  });

  it('takes a listing before any snapshot', () => {
    const s = reducer(empty, { type: 'list', drops: [drop('a', { availableStock: 9 })] });
    expect(s.drops[0]?.availableStock).toBe(9);
    expect(s.fromSnapshot).toBe(false);
  });

  it('applies each stock frame to its own drop, the latest one sent winning', () => {
    let s = reducer(empty, { type: 'snapshot', drops: [drop('a'), drop('b')] });
    s = reducer(s, { type: 'stock', dropId: 'a', availableStock: 5, reservedStock: 5, soldStock: 0 });
    s = reducer(s, { type: 'stock', dropId: 'a', availableStock: 8, reservedStock: 1, soldStock: 1 });
    expect(s.drops[0]).toMatchObject({ availableStock: 8, reservedStock: 1, soldStock: 1 });
    expect(s.drops[1]?.availableStock).toBe(10);
  });

  it('adds each purchase to the activity once, newest first, at most twelve', () => {
    let s = reducer(empty, { type: 'snapshot', drops: [drop('a')] });
    for (let i = 0; i < 15; i++) {
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
      const action = { type: 'purchase' as const, dropId: 'a', name: `u${i}`, topPurchasers: [], at };
      s = reducer(s, action);
      s = reducer(s, action);
    }
    expect(s.activity).toHaveLength(12);
    expect(s.activity[0]?.name).toBe('u14');
    expect(s.activity[0]?.dropName).toBe('Drop a');
  });

  it('starts the activity from the recent buyers a snapshot lists', () => {
    const s = reducer(empty, {
      type: 'snapshot',
      drops: [drop('a', { topPurchasers: [{ username: 'ann', purchasedAt: '2026-01-01T00:00:01Z' }] })],
    });
    expect(s.activity.map((a) => a.name)).toEqual(['ann']);
  });

  it('names recent buyers by displayName, then username, then "Someone" when names are hidden', () => {
    const s = reducer(empty, {
      type: 'snapshot',
      drops: [
        drop('a', {
          topPurchasers: [
            { displayName: 'Ann', username: 'ann_old', purchasedAt: '2026-01-01T00:00:03Z' },
            { username: 'bob', purchasedAt: '2026-01-01T00:00:02Z' },
            { purchasedAt: '2026-01-01T00:00:01Z' },
            { purchasedAt: '2026-01-01T00:00:00Z' },
          ],
        }),
      ],
    });
    expect(s.activity.map((a) => a.name)).toEqual(['Ann', 'bob', 'Someone', 'Someone']);
  });

  it('records the connection with the session its socket belongs to', () => {
    const s = reducer(empty, { type: 'connection', value: 'live', key: 'g_1' });
    expect(s).toMatchObject({ connection: 'live', socketKey: 'g_1' });
  });

  it('merges an upserted drop into the one it has', () => {
    let s = reducer(empty, { type: 'snapshot', drops: [drop('a')] });
    s = reducer(s, { type: 'upsert', drop: drop('a', { name: 'Renamed' }) });
    s = reducer(s, { type: 'upsert', drop: drop('b') });
    expect(s.drops.map((d) => d.name)).toEqual(['Renamed', 'Drop b']);
  });
});

describe('backoffMs', () => {
  it('doubles from half a second up to ten, within ±20%', () => {
    for (let n = 0; n < 10; n++) {
      const base = Math.min(10_000, 500 * 2 ** n);
      const ms = backoffMs(n);
      expect(ms).toBeGreaterThanOrEqual(base * 0.8);
      expect(ms).toBeLessThanOrEqual(base * 1.2);
    }
  });
});

describe('interpretFrame', () => {
  function purchaseFrame(names: { displayName?: string; username?: string }, top: Drop['topPurchasers']): WsMessage {
    return { type: 'purchase', seq: 1, dropId: 'a', variantId: 'a-v', quantity: 1, serverTime: T0, topPurchasers: top, ...names } as WsMessage;
  }

  function activityOf(msg: WsMessage) {
    const effect = interpretFrame(msg);
    if (effect?.kind !== 'action') throw new Error(`not an action: ${JSON.stringify(effect)}`);
    const s = reducer(reducer(empty, { type: 'snapshot', drops: [drop('a')] }), effect.action);
    return s.activity;
  }

  it('shows a purchase under its displayName, with the time its listed entry has', () => {
    const top = [
      { displayName: 'Ann', username: 'Ann', purchasedAt: '2026-01-01T00:00:05Z' },
      { displayName: 'Bob', username: 'Bob', purchasedAt: '2026-01-01T00:00:04Z' },
    ];
    const activity = activityOf(purchaseFrame({ displayName: 'Bob', username: 'Bob' }, top));
    expect(activity).toEqual([expect.objectContaining({ name: 'Bob', at: '2026-01-01T00:00:04Z', dropName: 'Drop a' })]);
  });

  it('falls back to the deprecated username when displayName is absent', () => {
    const activity = activityOf(purchaseFrame({ username: 'old_client' }, [{ username: 'old_client', purchasedAt: T0 }]));
    expect(activity[0]?.name).toBe('old_client');
  });

  it('shows "Someone" when the server hides names, at the newest listed time', () => {
    const top = [{ purchasedAt: '2026-01-01T00:00:09Z' }, { purchasedAt: '2026-01-01T00:00:01Z' }];
    const activity = activityOf(purchaseFrame({}, top));
    expect(activity).toEqual([expect.objectContaining({ name: 'Someone', at: '2026-01-01T00:00:09Z' })]);
  });

  it('keeps two hidden-name purchases in the same drop apart', () => {
    let s = reducer(empty, { type: 'snapshot', drops: [drop('a')] });
    for (const at of ['2026-01-01T00:00:01Z', '2026-01-01T00:00:02Z']) {
      const effect = interpretFrame(purchaseFrame({}, [{ purchasedAt: at }]));
      if (effect?.kind === 'action') s = reducer(s, effect.action);
    }
    expect(s.activity.map((a) => a.name)).toEqual(['Someone', 'Someone']);
  });

  it.each([
    ['holdExpired', 'expired'],
    ['holdReleased', 'released'],
    ['holdPurchased', 'purchased'],
  ] as const)('turns a private %s frame into the end of that hold', (type, how) => {
    const effect = interpretFrame({ type, seq: 1, dropId: 'a', reservationId: 'r1', serverTime: T0 } as WsMessage);
    expect(effect).toEqual({ kind: 'holdEnded', end: { how, dropId: 'a', reservationId: 'r1' } });
  });

  it('ignores a hold frame without its ids, and frames it does not know', () => {
    const noId = JSON.parse('{"type":"holdExpired","dropId":"a"}') as WsMessage;
    expect(interpretFrame(noId)).toBeNull();
    const unknown = JSON.parse('{"type":"offerMade","dropId":"a","serverTime":"2026-01-01T00:00:00Z"}') as WsMessage;
    expect(interpretFrame(unknown)).toBeNull();
  });

  it('passes stock frames and snapshots through', () => {
    expect(
      interpretFrame({
        type: 'stock',
        dropId: 'a',
        availableStock: 1,
        reservedStock: 2,
        soldStock: 3,
        totalStock: 6,
        variants: [],
        serverTime: T0,
      } as WsMessage),
    ).toEqual({
      kind: 'action',
      action: { type: 'stock', dropId: 'a', availableStock: 1, reservedStock: 2, soldStock: 3, totalStock: 6, variants: [] },
    });
    expect(interpretFrame({ type: 'snapshot', seq: 0, drops: [drop('a')], serverTime: T0 } as WsMessage)).toEqual({
      kind: 'snapshot',
      drops: [drop('a')],
    });
  });
});

describe('variants, pauses and cancellations on the live feed', () => {
  const sized = (id: string) =>
    drop(id, {
      totalStock: 6,
      availableStock: 6,
      variants: [
        { id: 'vs', name: 'S', totalStock: 3, availableStock: 3, reservedStock: 0, soldStock: 0, waitlistLength: 0 },
        { id: 'vm', name: 'M', totalStock: 3, availableStock: 3, reservedStock: 0, soldStock: 0, waitlistLength: 0 },
      ],
    });

  it('a stock frame updates each size it names and keeps the sizes’ names', () => {
    const frame = {
      type: 'stock',
      serverTime: T0,
      dropId: 'a',
      availableStock: 4,
      reservedStock: 1,
      soldStock: 1,
      totalStock: 6,
      variants: [{ id: 'vm', availableStock: 1, reservedStock: 1, soldStock: 1, totalStock: 3 }],
    } as WsMessage;
    const effect = interpretFrame(frame);
    if (effect?.kind !== 'action') throw new Error(JSON.stringify(effect));
    const s = reducer(reducer(empty, { type: 'snapshot', drops: [sized('a')] }), effect.action);
    expect(s.drops[0]?.variants.map((v) => [v.name, v.availableStock, v.reservedStock, v.soldStock, v.totalStock])).toEqual([
      ['S', 3, 0, 0, 3],
      ['M', 1, 1, 1, 3],
    ]);
    expect(s.drops[0]?.availableStock).toBe(4);
  });

  it('a stock frame without sizes leaves the sizes as they were', () => {
    let s = reducer(empty, { type: 'snapshot', drops: [sized('a')] });
    s = reducer(s, { type: 'stock', dropId: 'a', availableStock: 5, reservedStock: 1, soldStock: 0 });
    expect(s.drops[0]?.variants).toEqual(sized('a').variants);
  });

  it('dropUpdated replaces the drop: a pause shows without a reload', () => {
    const effect = interpretFrame({ type: 'dropUpdated', seq: 1, serverTime: T0, drop: { ...sized('a'), paused: true } } as WsMessage);
    if (effect?.kind !== 'action') throw new Error(JSON.stringify(effect));
    const s = reducer(reducer(empty, { type: 'snapshot', drops: [sized('a'), drop('b')] }), effect.action);
    expect(s.drops.map((d) => [d.id, d.paused])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('purchaseCancelled is for the page, not the drop state', () => {
    expect(interpretFrame({ type: 'purchaseCancelled', seq: 1, serverTime: T0, purchaseId: 'p1', dropId: 'a' } as WsMessage)).toEqual({
      kind: 'purchaseCancelled',
      purchaseId: 'p1',
      dropId: 'a',
    });
    expect(interpretFrame({ type: 'purchaseCancelled', serverTime: T0, dropId: 'a' } as unknown as WsMessage)).toBeNull();
  });
});

describe('resuming the live feed', () => {
  // Frames as the server sends them (read loosely: the generated types may
  // trail the server).
  const frame = (m: Record<string, unknown>) => ({ serverTime: T0, ...m }) as unknown as WsMessage;

  it('asks to resume after the highest seq seen, and for a snapshot before any', () => {
    expect(liveFeedUrl({ protocol: 'http:', host: 'shop.test:8080' }, null)).toBe('ws://shop.test:8080/api/ws');
    expect(liveFeedUrl({ protocol: 'https:', host: 'shop.test' }, 42)).toBe('wss://shop.test/api/ws?after=42');
    expect(liveFeedUrl({ protocol: 'http:', host: 'h' }, 0)).toBe('ws://h/api/ws?after=0');
  });

  it('follows the highest seq through snapshots, frames and a resume', () => {
    let last: number | null = null;
    const step = (m: Record<string, unknown>) => {
      const r = followSeq(last, frame(m));
      last = r.last;
      return r.apply;
    };
    expect(step({ type: 'snapshot', seq: 10, drops: [] })).toBe(true);
    expect(last).toBe(10);
    // Stock carries no seq and moves nothing.
    expect(step({ type: 'stock', dropId: 'a', availableStock: 1, reservedStock: 0, soldStock: 0 })).toBe(true);
    expect(last).toBe(10);
    expect(step({ type: 'purchase', seq: 12, dropId: 'a' })).toBe(true);
    // The same change's private frame shares its seq.
    expect(step({ type: 'holdPurchased', seq: 12, dropId: 'a', reservationId: 'r' })).toBe(true);
    expect(last).toBe(12);
    // A resume that replayed nothing for this page still moves it on.
    expect(step({ type: 'resumed', after: 12, seq: 20 })).toBe(true);
    expect(last).toBe(20);
    // A snapshot from a server not as far along sets the position back.
    expect(step({ type: 'snapshot', seq: 15, drops: [] })).toBe(true);
    expect(last).toBe(15);
  });

  it('ignores a frame older than the highest seq seen', () => {
    let r = followSeq(null, frame({ type: 'snapshot', seq: 5, drops: [] }));
    r = followSeq(r.last, frame({ type: 'purchase', seq: 9, dropId: 'a' }));
    expect(r).toEqual({ apply: true, last: 9 });
    expect(followSeq(r.last, frame({ type: 'purchase', seq: 8, dropId: 'a' }))).toEqual({ apply: false, last: 9 });
    expect(followSeq(r.last, frame({ type: 'dropCreated', seq: 3, drop: {} }))).toEqual({ apply: false, last: 9 });
    // A frame without a usable seq is applied (an older server sends none).
    expect(followSeq(r.last, frame({ type: 'purchase', seq: 'x', dropId: 'a' }))).toEqual({ apply: true, last: 9 });
  });

  it('reads resumed as a resume, not as an unknown frame', () => {
    expect(interpretFrame(frame({ type: 'resumed', after: 1, seq: 2 }))).toEqual({ kind: 'resumed' });
  });
});

describe('draws on the live feed', () => {
  it('reads a drawCompleted frame, and ignores one it cannot read', () => {
    const frame = { type: 'drawCompleted', dropId: 'a', drawnAt: T0, entries: 3, winners: 1, waiting: 2, seq: 9, serverTime: T0 };
    expect(interpretFrame(frame as unknown as WsMessage)).toEqual({
      kind: 'drawCompleted',
      frame: { type: 'drawCompleted', dropId: 'a', drawnAt: T0, entries: 3, winners: 1, waiting: 2 },
    });
    expect(interpretFrame({ type: 'drawCompleted', dropId: 'a' } as unknown as WsMessage)).toBeNull();
  });

  it('marks the drop drawn, once', () => {
    const s = reducer(empty, { type: 'snapshot', drops: [drop('a', { mode: 'draw', drawAt: T0, drawnAt: null }), drop('b')] });
    const drawn = reducer(s, { type: 'drawn', dropId: 'a', drawnAt: T0 });
    expect(drawn.drops[0]?.drawnAt).toBe(T0);
    expect(drawn.drops[1]).toBe(s.drops[1]);
    expect(reducer(drawn, { type: 'drawn', dropId: 'a', drawnAt: T0 })).toBe(drawn);
    expect(reducer(drawn, { type: 'drawn', dropId: 'zz', drawnAt: T0 })).toBe(drawn);
  });
});
