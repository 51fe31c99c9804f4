import { describe, expect, it } from 'vitest';
import type { Drop } from './api';
import { backoffMs, reducer, type State } from './useLiveDrops';

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
    ...over,
  };
}

const empty: State = { drops: [], fromSnapshot: false, loaded: false, connection: 'connecting', activity: [] };

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
      const action = { type: 'purchase' as const, dropId: 'a', username: `u${i}`, topPurchasers: [], at };
      s = reducer(s, action);
      s = reducer(s, action);
    }
    expect(s.activity).toHaveLength(12);
    expect(s.activity[0]?.username).toBe('u14');
    expect(s.activity[0]?.dropName).toBe('Drop a');
  });

  it('starts the activity from the recent buyers a snapshot lists', () => {
    const s = reducer(empty, {
      type: 'snapshot',
      drops: [drop('a', { topPurchasers: [{ username: 'ann', purchasedAt: '2026-01-01T00:00:01Z' }] })],
    });
    expect(s.activity.map((a) => a.username)).toEqual(['ann']);
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
