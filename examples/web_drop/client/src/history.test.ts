import { describe, expect, it } from 'vitest';
import type { LogEntry } from './api';
import { describeEntry, drawText, namesFrom, shortBuyerId, variantNames, type HistoryContext } from './history';

const DROP = '7d1f0a52-8a3e-4a83-9c1e-5b1f3c0e2a10';
const V40 = '11111111-1111-4111-8111-111111111111';
const V41 = '22222222-2222-4222-8222-222222222222';
const ALICE = 'c0ffee00-dead-4bee-8f00-0123456789ab';
const AT = '2030-03-17T17:46:40.000Z';

const hold: LogEntry = {
  type: 'holdCreated',
  seq: 2,
  at: AT,
  dropId: DROP,
  reservationId: '33333333-3333-4333-8333-333333333333',
  buyerId: ALICE,
  displayName: 'alice',
  variantId: V41,
  quantity: 2,
  expiresAt: '2030-03-17T17:47:40.000Z',
  offered: false,
};

const ctx = (variants: { id: string; name: string }[], entries: LogEntry[] = []): HistoryContext => ({
  variants: variantNames(variants),
  names: namesFrom(entries),
});

describe('shortBuyerId', () => {
  it('keeps short ids and shortens long ones to their ends', () => {
    expect(shortBuyerId('alice')).toBe('alice');
    expect(shortBuyerId('123456789012')).toBe('123456789012');
    expect(shortBuyerId(ALICE)).toBe('c0ffee…89ab');
    expect(shortBuyerId('ééééééééééééé')).toBe('éééééé…éééé');
  });
});

describe('describeEntry', () => {
  it('names the drop the shop created, with its stock and price', () => {
    const line = describeEntry(
      {
        type: 'dropCreated',
        seq: 1,
        at: AT,
        dropId: DROP,
        drop: {
          id: DROP,
          name: 'Sneaker X',
          price: '199.99',
          totalStock: 10,
          variants: [{ id: V40, name: '40' }],
          maxPerBuyer: 1,
          paused: false,
          startsAt: null,
          endsAt: null,
          holdSeconds: 60,
          createdAt: AT,
          waitlist: true,
          mode: 'firstCome',
        },
      },
      ctx([]),
    );
    expect(line).toMatchObject({ seq: 1, at: AT, kind: 'dropCreated', who: 'The shop' });
    expect(line.text).toBe('Created “Sneaker X”: 10 units at $199.99');
  });

  it('says what the shop did to the drop', () => {
    const drop = {
      id: DROP,
      name: 'A',
      price: '1.00',
      totalStock: 1,
      variants: [],
      maxPerBuyer: 1,
      paused: true,
      startsAt: null,
      endsAt: null,
      holdSeconds: 60,
      createdAt: AT,
      waitlist: true,
      mode: 'firstCome' as const,
    };
    const texts = (['paused', 'resumed', 'edited', 'ended'] as const).map(
      (action) => describeEntry({ type: 'dropUpdated', seq: 3, at: AT, dropId: DROP, action, drop }, ctx([])).text,
    );
    expect(texts).toEqual(['Paused the drop', 'Resumed the drop', 'Edited the drop', 'Ended the sale']);
  });

  it('shows the buyer by name and short id, and the variant only when there are several', () => {
    const one = describeEntry(hold, ctx([{ id: V41, name: '41' }]));
    expect(one.who).toBe('alice (c0ffee…89ab)');
    expect(one.text).toMatch(/^Held 2 units until /);
    const several = describeEntry(hold, ctx([{ id: V40, name: '40' }, { id: V41, name: '41' }]));
    expect(several.text).toMatch(/^Held 2 units of 41 until /);
  });

  it('describes purchases with their amount', () => {
    const line = describeEntry(
      {
        type: 'purchaseCompleted',
        seq: 4,
        at: AT,
        dropId: DROP,
        purchaseId: '44444444-4444-4444-8444-444444444444',
        reservationId: hold.reservationId,
        buyerId: ALICE,
        displayName: 'alice',
        variantId: V40,
        quantity: 1,
        amount: '199.99',
      },
      ctx([]),
    );
    expect(line).toMatchObject({ kind: 'purchaseCompleted', who: 'alice (c0ffee…89ab)', text: 'Bought 1 unit for $199.99' });
  });

  it('names buyers of entries without a name from earlier entries, else by short id', () => {
    const base = { seq: 5, at: AT, dropId: DROP, reservationId: hold.reservationId, buyerId: ALICE, variantId: V41, quantity: 1 };
    const known = ctx([{ id: V40, name: '40' }, { id: V41, name: '41' }], [hold]);
    expect(describeEntry({ type: 'holdReleased', ...base }, known)).toMatchObject({
      who: 'alice (c0ffee…89ab)',
      text: 'Released a hold of 1 unit of 41',
    });
    expect(describeEntry({ type: 'holdExpired', ...base }, ctx([]))).toMatchObject({
      who: 'c0ffee…89ab',
      text: 'Let a hold of 1 unit expire',
    });
    const cancelled = describeEntry(
      { type: 'purchaseCancelled', ...base, purchaseId: '44444444-4444-4444-8444-444444444444', amount: '5.00' },
      known,
    );
    expect(cancelled.who).toBe('alice (c0ffee…89ab)');
    expect(cancelled.text).toBe('Purchase of 1 unit of 41 cancelled by the shop ($5.00 to refund)');
  });
});

describe('the waiting line in the history', () => {
  const sizes = [
    { id: V40, name: '40' },
    { id: V41, name: '41' },
  ];
  const joined: LogEntry = {
    type: 'waitlistJoined',
    seq: 6,
    at: AT,
    dropId: DROP,
    buyerId: ALICE,
    displayName: 'alice',
    variantId: V41,
    quantity: 2,
    ticket: 17,
  };

  it('tells a join, each way of leaving, and a hold offered from the line', () => {
    expect(describeEntry(joined, ctx(sizes))).toMatchObject({
      kind: 'waitlistJoined',
      who: 'alice (c0ffee…89ab)',
      text: 'Joined the line for 2 units of 41 (ticket 17)',
    });
    const left = (reason: 'left' | 'offered' | 'skipped') =>
      describeEntry(
        { type: 'waitlistLeft', seq: 7, at: AT, dropId: DROP, buyerId: ALICE, variantId: V41, quantity: 2, ticket: 17, reason },
        ctx(sizes, [joined]),
      );
    expect(left('left')).toMatchObject({ who: 'alice (c0ffee…89ab)', text: 'Left the line, waiting for 2 units of 41 (ticket 17)' });
    expect(left('offered').text).toMatch(/^Left the line: their turn came/);
    expect(left('skipped').text).toMatch(/^Was skipped in the line/);
    expect(describeEntry({ ...hold, offered: true }, ctx(sizes)).text).toMatch(/^Was offered 2 units of 41 from the line, held until /);
  });

  it('learns names from joins too', () => {
    expect(namesFrom([joined]).get(ALICE)).toBe('alice');
  });
});

describe('namesFrom', () => {
  it('learns names from holds and purchases, the latest winning', () => {
    const renamed: LogEntry = { ...hold, seq: 9, displayName: 'alice_2' };
    const names = namesFrom([hold, renamed]);
    expect(names.get(ALICE)).toBe('alice_2');
    expect(names.size).toBe(1);
  });
});

describe('a draw in the history', () => {
  it('says how many won, from how many entries, and how many were put in line', () => {
    const line = describeEntry(
      { type: 'drawCompleted', seq: 9, at: AT, dropId: DROP, drawnAt: AT, entries: 3, winners: 1, waiting: 2 },
      ctx([]),
    );
    expect(line).toMatchObject({ seq: 9, kind: 'drawCompleted', who: 'The shop', text: 'Drew 1 winner from 3 entries; 2 put in line' });
    expect(drawText({ entries: 1, winners: 0, waiting: 0 })).toBe('Drew 0 winners from 1 entry');
  });
});
