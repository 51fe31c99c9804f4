import { describe, expect, it } from 'vitest';
import type { Drop, Reservation, WaitlistPlace, WsMessage } from './api';
import { chosenSize, sizeOptions } from './inventory';
import { holdsReducer } from './useHolds';
import { interpretFrame, reducer, type LineChange, type State } from './useLiveDrops';
import {
  leaveNotice,
  lineLength,
  listingNewerThan,
  lineLengthText,
  placeText,
  placesReducer,
  type Places,
  type PlacesAction,
} from './waitlist';

const T0 = '2026-01-01T00:00:00Z';

function wirePlace(over: Partial<WaitlistPlace> = {}): WaitlistPlace {
  return {
    dropId: 'a',
    variantId: 'vm',
    quantity: 1,
    ticket: 20,
    position: 3,
    setAside: 0,
    joinedAt: T0,
    ...over,
  };
}

// A frame as the server sends it, read the way the page reads it.
function lineChange(frame: Record<string, unknown>): LineChange {
  const effect = interpretFrame({ serverTime: T0, seq: 7, ...frame } as unknown as WsMessage);
  if (effect?.kind !== 'line') throw new Error(`not a line change: ${JSON.stringify(effect)}`);
  return effect.change;
}

// What the page does with a line change: the place reducer takes the same shape.
function applyFrame(places: Places, frame: Record<string, unknown>): Places {
  const change = lineChange(frame);
  const action: PlacesAction =
    change.type === 'left' ? { type: 'left', dropId: change.dropId, ticket: change.ticket } : change;
  return placesReducer(places, action);
}

function joined(place: WaitlistPlace): Places {
  return placesReducer({}, { type: 'put', place });
}

describe('a place in line follows the live feed', () => {
  it('moves up one for each leave ahead of it in its own line, never past the head', () => {
    let places = joined(wirePlace({ ticket: 20, position: 3 }));
    places = applyFrame(places, { type: 'waitlistMoved', dropId: 'a', variantId: 'vm', ticket: 11 });
    expect(places.a?.position).toBe(2);
    places = applyFrame(places, { type: 'waitlistMoved', dropId: 'a', variantId: 'vm', ticket: 12 });
    expect(places.a?.position).toBe(1);
    // Read from the server just after a leave whose frame comes later: stays the head.
    places = applyFrame(places, { type: 'waitlistMoved', dropId: 'a', variantId: 'vm', ticket: 13 });
    expect(places.a?.position).toBe(1);
  });

  it('stays put for leaves behind it, in another size’s line or in another drop', () => {
    const places = joined(wirePlace({ ticket: 20, position: 2 }));
    for (const frame of [
      { type: 'waitlistMoved', dropId: 'a', variantId: 'vm', ticket: 25 },
      { type: 'waitlistMoved', dropId: 'a', variantId: 'vm', ticket: 20 },
      { type: 'waitlistMoved', dropId: 'a', variantId: 'vs', ticket: 3 },
      { type: 'waitlistMoved', dropId: 'b', variantId: 'vm', ticket: 3 },
    ]) {
      expect(applyFrame(places, frame)).toBe(places);
    }
  });

  it('is cleared by its own leave, whatever the reason, and not by a leave of an earlier ticket', () => {
    for (const reason of ['left', 'offered', 'skipped']) {
      const places = joined(wirePlace({ ticket: 20 }));
      expect(applyFrame(places, { type: 'waitlistLeft', dropId: 'a', variantId: 'vm', ticket: 20, reason })).toEqual({});
      // A place left earlier in another tab, then joined again here: the new ticket stays.
      expect(applyFrame(places, { type: 'waitlistLeft', dropId: 'a', variantId: 'vm', ticket: 9, reason })).toBe(places);
    }
  });

  it('learns of a join from another tab without a position, and keeps the position a join answer gave', () => {
    const frame = { type: 'waitlistJoined', dropId: 'a', variantId: 'vm', quantity: 2, ticket: 30 };
    const heard = applyFrame({}, frame);
    expect(heard.a).toEqual({ dropId: 'a', variantId: 'vm', quantity: 2, ticket: 30, position: null });
    expect(placeText(heard.a!)).toBe('You are in line');
    // Moves cannot count from an unknown position; the server is asked instead.
    expect(applyFrame(heard, { type: 'waitlistMoved', dropId: 'a', variantId: 'vm', ticket: 1 })).toBe(heard);
    const answered = joined(wirePlace({ ticket: 30, quantity: 2, position: 4 }));
    expect(applyFrame(answered, frame)).toBe(answered);
    expect(placeText(answered.a!)).toBe('You are #4 in line');
  });

  it('ignores line frames without their ids or with an unknown reason', () => {
    for (const frame of [
      { type: 'waitlistMoved', dropId: 'a', variantId: 'vm' },
      { type: 'waitlistLeft', dropId: 'a', variantId: 'vm', ticket: 3, reason: 'vanished' },
      { type: 'waitlistJoined', variantId: 'vm', quantity: 1, ticket: 3 },
      { type: 'holdOffered', dropId: 'a' },
    ]) {
      expect(interpretFrame({ serverTime: T0, seq: 1, ...frame } as unknown as WsMessage)).toBeNull();
    }
  });
});

describe('places from the server', () => {
  const listed = (id: string, userWaitlist?: WaitlistPlace | null): Drop =>
    ({ id, ...(userWaitlist === undefined ? {} : { userWaitlist }) }) as Drop;

  it('takes the listing’s places, clears the drops it lists without one, and leaves unlisted drops', () => {
    let places = placesReducer(joined(wirePlace({ dropId: 'a' })), { type: 'put', place: wirePlace({ dropId: 'c', ticket: 5 }) });
    places = placesReducer(places, {
      type: 'listing',
      drops: [listed('a', null), listed('b', wirePlace({ dropId: 'b', ticket: 8, position: 1 })), listed('old')],
    });
    expect(Object.keys(places).sort()).toEqual(['b', 'c']);
    expect(places.b?.position).toBe(1);
  });

  it('a listing asked for before a join or leave answer leaves that drop as the answer made it', () => {
    const drops = [listed('a', null), listed('b', null)];
    // Asked at t=100; the page joined a line of 'a' at t=150, and of 'b' long before.
    const learnedAt = new Map([
      ['a', 150],
      ['b', 20],
    ]);
    expect(listingNewerThan(drops, learnedAt, 100).map((d) => d.id)).toEqual(['b']);
    const places = placesReducer(joined(wirePlace({ dropId: 'a' })), { type: 'listing', drops: listingNewerThan(drops, learnedAt, 100) });
    expect(Object.keys(places)).toEqual(['a']);
  });

  it('a place read back replaces what the page had; none clears it', () => {
    let places = joined(wirePlace({ position: 3 }));
    places = placesReducer(places, { type: 'put', place: wirePlace({ position: 2 }) });
    expect(places.a?.position).toBe(2);
    expect(placesReducer(places, { type: 'put', place: wirePlace({ position: 2 }) })).toBe(places);
    expect(placesReducer(places, { type: 'none', dropId: 'a' })).toEqual({});
  });
});

describe('the offered hold', () => {
  const offered: Reservation = {
    id: 'r1',
    dropId: 'a',
    variantId: 'vm',
    quantity: 2,
    status: 'active',
    createdAt: T0,
    expiresAt: '2026-01-01T00:00:30Z',
    displayName: 'me',
    username: 'me',
    offered: true,
  };

  it('arrives on the buyer’s socket as a hold that says it was offered from the line', () => {
    const effect = interpretFrame({ type: 'holdOffered', serverTime: T0, seq: 3, dropId: 'a', reservation: offered } as WsMessage);
    if (effect?.kind !== 'holdOffered') throw new Error(JSON.stringify(effect));
    const holds = holdsReducer([], { type: 'put', buyerId: 'g_me', reservation: effect.reservation });
    expect(holds).toEqual([
      { id: 'r1', dropId: 'a', buyerId: 'g_me', variantId: 'vm', quantity: 2, expiresAt: Date.parse(offered.expiresAt), offered: true },
    ]);
  });

  it('is still labelled offered when a refresh reads it from the listing', () => {
    const drop = {
      id: 'a',
      userReservation: { id: 'r1', variantId: 'vm', quantity: 2, expiresAt: offered.expiresAt, offered: true },
    } as Drop;
    const holds = holdsReducer([], { type: 'listing', buyerId: 'g_me', drops: [drop] });
    expect(holds[0]?.offered).toBe(true);
  });
});

describe('line lengths', () => {
  const empty: State = { drops: [], fromSnapshot: false, loaded: false, connection: 'connecting', socketKey: null, activity: [] };
  const drop = {
    id: 'a',
    name: 'A',
    variants: [
      { id: 'vs', name: 'S', totalStock: 1, availableStock: 0, reservedStock: 1, soldStock: 0, waitlistLength: 0 },
      { id: 'vm', name: 'M', totalStock: 1, availableStock: 0, reservedStock: 1, soldStock: 0, waitlistLength: 1 },
    ],
  } as Drop;

  it('follow the stock frames per size, and stay as they were when a frame has none', () => {
    const frame = {
      type: 'stock',
      serverTime: T0,
      dropId: 'a',
      availableStock: 0,
      reservedStock: 2,
      soldStock: 0,
      totalStock: 2,
      variants: [
        { id: 'vs', availableStock: 0, reservedStock: 1, soldStock: 0, totalStock: 1, waitlistLength: 2 },
        { id: 'vm', availableStock: 0, reservedStock: 1, soldStock: 0, totalStock: 1 },
      ],
    } as WsMessage;
    const effect = interpretFrame(frame);
    if (effect?.kind !== 'action') throw new Error(JSON.stringify(effect));
    const s = reducer(reducer(empty, { type: 'snapshot', drops: [drop] }), effect.action);
    expect(s.drops[0]?.variants.map((v) => lineLength(v))).toEqual([2, 1]);
  });

  it('read 0 from a server without lines, and are said in words', () => {
    expect(lineLength(undefined)).toBe(0);
    expect(lineLength({})).toBe(0);
    expect([0, 1, 3].map(lineLengthText)).toEqual(['Nobody waits in line', '1 buyer waits in line', '3 buyers wait in line']);
  });
});

describe('sold-out sizes on a drop with waiting lines', () => {
  const size = (id: string, availableStock: number) => ({
    id,
    name: id.toUpperCase(),
    totalStock: 2,
    availableStock,
    reservedStock: 2 - availableStock,
    soldStock: 0,
    waitlistLength: 0,
  });
  const variants = [size('s', 0), size('m', 2)];

  it('can be chosen, to join their line, and are still marked sold out', () => {
    expect(sizeOptions({ variants, waitlist: true }).map((o) => [o.id, o.soldOut, o.disabled])).toEqual([
      ['s', true, false],
      ['m', false, false],
    ]);
    expect(sizeOptions({ variants, waitlist: false }).map((o) => [o.id, o.soldOut, o.disabled])).toEqual([
      ['s', true, true],
      ['m', false, false],
    ]);
  });

  it('stay chosen once the buyer picks them; without a choice the first size with stock is taken', () => {
    expect(chosenSize({ variants, waitlist: true }, 's')?.id).toBe('s');
    expect(chosenSize({ variants, waitlist: false }, 's')?.id).toBe('m');
    expect(chosenSize({ variants, waitlist: true }, null)?.id).toBe('m');
  });
});

describe('leave notices', () => {
  it('explain a skipped turn, tell of a leave elsewhere, and say nothing when a hold was offered', () => {
    expect(leaveNotice('skipped', 'Dunk')?.body).toMatch(/limit per buyer/);
    expect(leaveNotice('left', 'Dunk')?.title).toBe('You left the line');
    expect(leaveNotice('offered', 'Dunk')).toBeNull();
  });
});
