import { describe, expect, it } from 'vitest';
import type { Drop, Reservation } from './api';
import { holdsReducer, type Hold } from './useHolds';
import { interpretFrame } from './useLiveDrops';

const EXPIRES = '2026-01-01T00:01:00Z';

function hold(id: string, dropId: string, buyerId = 'g_me'): Hold {
  return { id, dropId, buyerId, variantId: 'v1', quantity: 1, expiresAt: Date.parse(EXPIRES), offered: false };
}

function reservation(id: string, dropId: string, status: Reservation['status'] = 'active'): Reservation {
  return {
    id,
    dropId,
    variantId: 'v1',
    quantity: 1,
    status,
    createdAt: '2026-01-01T00:00:00Z',
    expiresAt: EXPIRES,
    displayName: 'me',
    username: 'me',
    offered: false,
  };
}

describe('holdsReducer', () => {
  it('ends exactly the hold a private frame names, whichever way it ended', () => {
    for (const type of ['holdExpired', 'holdReleased', 'holdPurchased'] as const) {
      const holds = [hold('r1', 'a'), hold('r2', 'b')];
      const effect = interpretFrame({ type, seq: 1, dropId: 'a', reservationId: 'r1', serverTime: EXPIRES });
      if (effect?.kind !== 'holdEnded') throw new Error(`${type}: ${JSON.stringify(effect)}`);
      const next = holdsReducer(holds, { type: 'remove', id: effect.end.reservationId });
      expect(next.map((h) => h.id)).toEqual(['r2']);
    }
  });

  it('changes nothing for a frame about a hold it does not have', () => {
    const holds = [hold('r1', 'a')];
    expect(holdsReducer(holds, { type: 'remove', id: 'elsewhere' })).toBe(holds);
  });

  it('keeps one hold per drop and buyer, and drops a hold the server reports ended', () => {
    let holds = holdsReducer([], { type: 'put', buyerId: 'g_me', reservation: reservation('r1', 'a') });
    holds = holdsReducer(holds, { type: 'put', buyerId: 'g_me', reservation: reservation('r2', 'a') });
    expect(holds.map((h) => h.id)).toEqual(['r2']);
    holds = holdsReducer(holds, { type: 'put', buyerId: 'g_me', reservation: reservation('r2', 'a', 'purchased') });
    expect(holds).toEqual([]);
  });

  it('keeps the holds of an earlier sign-in apart and forgets them on sign-out', () => {
    // One name signed in twice is two buyers: the first one's hold stays theirs.
    let holds = [hold('old', 'a', 'g_first')];
    holds = holdsReducer(holds, { type: 'put', buyerId: 'g_second', reservation: reservation('new', 'a') });
    expect(holds.map((h) => [h.id, h.buyerId])).toEqual([
      ['old', 'g_first'],
      ['new', 'g_second'],
    ]);
    holds = holdsReducer(holds, { type: 'forgetBuyer', buyerId: 'g_first' });
    expect(holds.map((h) => h.id)).toEqual(['new']);
  });

  it('takes the holds a listing reports for the signed-in buyer', () => {
    const listed = { id: 'a', userReservation: { id: 'r9', expiresAt: EXPIRES, variantId: 'v1', quantity: 1 } } as Drop;
    const holds = holdsReducer([hold('r1', 'a')], { type: 'listing', buyerId: 'g_me', drops: [listed] });
    expect(holds).toEqual([hold('r9', 'a')]);
  });

  it('keeps the size and quantity a hold was made with', () => {
    const r = { ...reservation('r1', 'a'), variantId: 'v-m', quantity: 3 };
    const holds = holdsReducer([], { type: 'put', buyerId: 'g_me', reservation: r });
    expect(holds).toEqual([{ ...hold('r1', 'a'), variantId: 'v-m', quantity: 3 }]);
    const listed = { id: 'b', userReservation: { id: 'r2', expiresAt: EXPIRES, variantId: 'v-l', quantity: 2 } } as Drop;
    const both = holdsReducer(holds, { type: 'listing', buyerId: 'g_me', drops: [listed] });
    expect(both[1]).toEqual({ ...hold('r2', 'b'), variantId: 'v-l', quantity: 2 });
  });

  it('drops holds whose time is up', () => {
    const holds = [hold('r1', 'a'), { ...hold('r2', 'b'), expiresAt: Date.parse(EXPIRES) + 1 }];
    expect(holdsReducer(holds, { type: 'expire', now: Date.parse(EXPIRES) }).map((h) => h.id)).toEqual(['r2']);
  });
});
