import { describe, expect, it } from 'vitest';
import type { Drop, WsMessage } from './api';
import { backoffMs, interpretFrame, reducer, type State } from './useLiveDrops';

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
    variants: [{ id: `${id}-v`, name: 'Standard', totalStock: 10, availableStock: 10, reservedStock: 0, soldStock: 0 }],
    maxPerBuyer: 1,
    paused: false,
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
    return { type: 'purchase', dropId: 'a', variantId: 'a-v', quantity: 1, serverTime: T0, topPurchasers: top, ...names };
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
    const effect = interpretFrame({ type, dropId: 'a', reservationId: 'r1', serverTime: T0 });
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
      }),
    ).toEqual({
      kind: 'action',
      action: { type: 'stock', dropId: 'a', availableStock: 1, reservedStock: 2, soldStock: 3, totalStock: 6, variants: [] },
    });
    expect(interpretFrame({ type: 'snapshot', drops: [drop('a')], serverTime: T0 })).toEqual({
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
        { id: 'vs', name: 'S', totalStock: 3, availableStock: 3, reservedStock: 0, soldStock: 0 },
        { id: 'vm', name: 'M', totalStock: 3, availableStock: 3, reservedStock: 0, soldStock: 0 },
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
    const effect = interpretFrame({ type: 'dropUpdated', serverTime: T0, drop: { ...sized('a'), paused: true } });
    if (effect?.kind !== 'action') throw new Error(JSON.stringify(effect));
    const s = reducer(reducer(empty, { type: 'snapshot', drops: [sized('a'), drop('b')] }), effect.action);
    expect(s.drops.map((d) => [d.id, d.paused])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('purchaseCancelled is for the page, not the drop state', () => {
    expect(interpretFrame({ type: 'purchaseCancelled', serverTime: T0, purchaseId: 'p1', dropId: 'a' })).toEqual({
      kind: 'purchaseCancelled',
      purchaseId: 'p1',
      dropId: 'a',
    });
    expect(interpretFrame({ type: 'purchaseCancelled', serverTime: T0, dropId: 'a' } as unknown as WsMessage)).toBeNull();
  });
});
