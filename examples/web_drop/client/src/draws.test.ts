import { describe, expect, it } from 'vitest';
import type { Drop, Entry } from './api';
import type { ReceiptStanding } from './drawCheck';
import {
  drawPhase,
  drawView,
  entriesNewerThan,
  entriesReducer,
  readDrawCompleted,
  resultText,
  seedHashAgreement,
  shortHash,
  shortReceipt,
  standingText,
  toEntry,
  untilDraw,
  type Entries,
} from './draws';
import type { Place } from './waitlist';

const R1 = '0123456789abcdef0123456789abcdef';
const R2 = 'fedcba9876543210fedcba9876543210';

function entry(over: Partial<Entry> = {}): Entry {
  return {
    dropId: 'd1',
    variantId: 'v1',
    receipt: R1,
    enteredAt: '2030-01-01T00:00:00Z',
    outcome: null,
    drawPosition: null,
    reservationId: null,
    ...over,
  };
}

function drop(id: string, over: Partial<Drop> = {}): Drop {
  return {
    id,
    name: `Drop ${id}`,
    price: '10.00',
    totalStock: 1,
    availableStock: 1,
    reservedStock: 0,
    soldStock: 0,
    startsAt: null,
    endsAt: null,
    holdSeconds: 60,
    topPurchasers: [],
    variants: [{ id: 'v1', name: 'Standard', totalStock: 1, availableStock: 1, reservedStock: 0, soldStock: 0, waitlistLength: 0 }],
    maxPerBuyer: 1,
    paused: false,
    waitlist: true,
    mode: 'draw',
    drawAt: '2030-01-01T12:00:00Z',
    beaconName: null,
    drawnAt: null,
    ...over,
  };
}

const place: Place = { dropId: 'd1', variantId: 'v1', quantity: 1, ticket: 7, position: 2 };
const NOON = Date.parse('2030-01-01T12:00:00Z');

describe('entries', () => {
  it('reads an API entry, lowercasing the receipt and dropping what it cannot read', () => {
    expect(toEntry({ ...entry(), receipt: R1.toUpperCase(), outcome: 'bogus', drawPosition: 0 })).toEqual(entry());
    expect(toEntry({ ...entry(), outcome: 'won', drawPosition: 1, reservationId: 'r1' })).toEqual(
      entry({ outcome: 'won', drawPosition: 1, reservationId: 'r1' }),
    );
    expect(toEntry({ dropId: 'd1' })).toBeNull();
    expect(toEntry(null)).toBeNull();
  });

  it('puts, replaces and removes an entry, keeping the same object when nothing changes', () => {
    const none: Entries = {};
    const one = entriesReducer(none, { type: 'put', entry: entry() });
    expect(one).toEqual({ d1: entry() });
    expect(entriesReducer(one, { type: 'put', entry: entry() })).toBe(one);
    const won = entriesReducer(one, { type: 'put', entry: entry({ outcome: 'won' }) });
    expect(won.d1?.outcome).toBe('won');
    expect(entriesReducer(won, { type: 'none', dropId: 'd1' })).toEqual({});
    expect(entriesReducer(none, { type: 'none', dropId: 'd1' })).toBe(none);
  });

  it('takes a listing’s userEntry, null removing one, absent saying nothing', () => {
    const start: Entries = { d1: entry(), d2: entry({ dropId: 'd2' }), d3: entry({ dropId: 'd3' }) };
    const older = drop('d3');
    delete older.userEntry;
    const next = entriesReducer(start, {
      type: 'listing',
      drops: [drop('d1', { userEntry: entry({ outcome: 'lost' }) }), drop('d2', { userEntry: null }), older],
    });
    expect(next.d1?.outcome).toBe('lost');
    expect(next.d2).toBeUndefined();
    expect(next.d3).toEqual(start.d3);
    // An entry listed under another drop is not this drop's.
    expect(entriesReducer(start, { type: 'listing', drops: [drop('d1', { userEntry: entry({ dropId: 'd9' }) })] }).d1).toBeUndefined();
  });

  it('leaves out drops whose entry the page heard of after the listing was asked for', () => {
    const learned = new Map([['d1', 50]]);
    const drops = [drop('d1'), drop('d2')];
    expect(entriesNewerThan(drops, learned, 40).map((d) => d.id)).toEqual(['d2']);
    expect(entriesNewerThan(drops, learned, 60).map((d) => d.id)).toEqual(['d1', 'd2']);
  });
});

describe('the draw’s phase', () => {
  it('is null for a first-come drop, whatever it holds', () => {
    expect(drawPhase(drop('d1', { mode: 'firstCome' }), NOON)).toBeNull();
    const { mode: _mode, ...older } = drop('d1');
    expect(_mode).toBe('draw');
    expect(drawPhase(older, NOON)).toBeNull();
  });

  it('goes upcoming, open, drawing, drawn', () => {
    const d = drop('d1', { startsAt: '2030-01-01T11:00:00Z' });
    expect(drawPhase(d, NOON - 2 * 3600_000)).toBe('upcoming');
    expect(drawPhase(d, NOON - 1)).toBe('open');
    expect(drawPhase(d, NOON)).toBe('drawing');
    // Only the server says the draw is done, early or late.
    expect(drawPhase({ ...d, drawnAt: '2030-01-01T12:00:01Z' }, NOON - 1)).toBe('drawn');
    expect(drawPhase({ ...d, drawnAt: '2030-01-01T12:00:01Z' }, NOON + 5000)).toBe('drawn');
  });

  it('counts down to the draw, never below zero', () => {
    expect(untilDraw(drop('d1'), NOON - 6500)).toBe(6500);
    expect(untilDraw(drop('d1'), NOON + 1)).toBe(0);
    expect(untilDraw(drop('d1', { drawAt: null }), NOON)).toBeNull();
  });
});

describe('what the card shows of the draw', () => {
  const hold = { id: 'r1', offered: true };

  it('before the draw: enter, or the entry', () => {
    expect(drawView('open', undefined, undefined, undefined)).toEqual({ kind: 'enter' });
    expect(drawView('open', entry(), undefined, undefined)).toEqual({ kind: 'entered', entry: entry() });
    expect(drawView('drawing', entry(), undefined, undefined)).toEqual({ kind: 'closed', entry: entry() });
    expect(drawView('drawing', undefined, undefined, undefined)).toEqual({ kind: 'closed', entry: null });
    expect(drawView('upcoming', undefined, undefined, undefined)).toEqual({ kind: 'none' });
    expect(drawView(null, entry(), hold, place)).toEqual({ kind: 'none' });
  });

  it('after the draw: won with the hold, waiting with the place, lost', () => {
    const won = entry({ outcome: 'won', drawPosition: 1, reservationId: 'r1' });
    expect(drawView('drawn', won, hold, undefined)).toEqual({ kind: 'won', entry: won, held: true });
    // The hold was bought or ran out: still a win, no hold to show.
    expect(drawView('drawn', won, undefined, undefined)).toEqual({ kind: 'won', entry: won, held: false });
    // A later first-come hold of another reservation is not the win's.
    expect(drawView('drawn', won, { id: 'r9', offered: false }, undefined)).toEqual({ kind: 'won', entry: won, held: false });
    const waiting = entry({ outcome: 'waiting', drawPosition: 2 });
    expect(drawView('drawn', waiting, undefined, place)).toEqual({ kind: 'waiting', entry: waiting, place });
    expect(drawView('drawn', waiting, undefined, undefined)).toEqual({ kind: 'waiting', entry: waiting, place: null });
    const lost = entry({ outcome: 'lost', drawPosition: 3 });
    expect(drawView('drawn', lost, undefined, undefined)).toEqual({ kind: 'lost', entry: lost });
    expect(drawView('drawn', undefined, undefined, undefined)).toEqual({ kind: 'none' });
  });

  it('an offered hold or a place tells the result before the outcome is read back', () => {
    const e = entry();
    expect(drawView('drawn', e, hold, undefined)).toEqual({ kind: 'won', entry: e, held: true });
    // A hold that was not offered is no win.
    expect(drawView('drawn', e, { id: 'r2', offered: false }, undefined)).toEqual({ kind: 'pending', entry: e });
    expect(drawView('drawn', e, undefined, place)).toEqual({ kind: 'waiting', entry: e, place });
    expect(drawView('drawn', e, undefined, undefined)).toEqual({ kind: 'pending', entry: e });
  });

  it('says the result in words', () => {
    expect(resultText({ kind: 'won', entry: entry(), held: true })).toBe('You won the draw');
    expect(resultText({ kind: 'waiting', entry: entry(), place })).toMatch(/wait in line/);
    expect(resultText({ kind: 'lost', entry: entry() })).toBe('Not drawn this time');
    expect(resultText({ kind: 'enter' })).toBeNull();
    expect(resultText({ kind: 'entered', entry: entry() })).toBeNull();
  });
});

describe('the drawCompleted frame', () => {
  it('is read with its counts, and anything else is not one', () => {
    expect(
      readDrawCompleted({ type: 'drawCompleted', dropId: 'd1', drawnAt: '2030-01-01T12:00:00Z', entries: 3, winners: 1, waiting: 2 }),
    ).toEqual({ type: 'drawCompleted', dropId: 'd1', drawnAt: '2030-01-01T12:00:00Z', entries: 3, winners: 1, waiting: 2 });
    expect(readDrawCompleted({ type: 'drawCompleted', dropId: 'd1', drawnAt: 'x', entries: -1 })).toMatchObject({ entries: 0 });
    expect(readDrawCompleted({ type: 'drawCompleted', dropId: 'd1' })).toBeNull();
    expect(readDrawCompleted({ type: 'stock', dropId: 'd1', drawnAt: 'x' } as Record<string, unknown>)).toBeNull();
  });
});

describe('the check in words', () => {
  it('shortens receipts and hashes', () => {
    expect(shortReceipt(R1)).toBe('01234567…');
    expect(shortHash('a'.repeat(56) + 'bbbbbbbb')).toBe('aaaaaaaa…bbbbbbbb');
    expect(shortHash('abc')).toBe('abc');
  });

  it('compares the published seed hash with the one shown before the draw', () => {
    expect(seedHashAgreement('ABCD', 'abcd')).toBe('same');
    expect(seedHashAgreement('abcd', 'abce')).toBe('differs');
    expect(seedHashAgreement(null, 'abcd')).toBe('unknown');
  });

  it('says where a receipt landed, with its size when the drop has sizes', () => {
    const size = (id: string) => (id === 'v1' ? 'M' : null);
    const won: ReceiptStanding = { status: 'won', receipt: R1, variantId: 'v1', place: 1 };
    expect(standingText(won, size)).toBe('Your receipt 01234567… won (size M): drawn #1.');
    const waiting: ReceiptStanding = { status: 'waiting', receipt: R2, variantId: 'v2', place: 2, of: 3 };
    expect(standingText(waiting, size)).toBe('Your receipt fedcba98… was not drawn: #2 of 3 after the winners.');
    expect(standingText({ status: 'notListed', receipt: R2 }, size)).toMatch(/not in the published entry list/);
  });
});
