// The signed-in buyer's places in waiting lines, and how the live feed moves
// them. Pure functions, so they are unit tested.
//
// A buyer stands in at most one line per drop (one variant of it). Their
// position comes from the server (joining, `GET /api/drops/:id/waitlist`, the
// drop listing's `userWaitlist`) and then follows the public `waitlistMoved`
// frames: each one names the ticket of someone who left the line of a
// variant, and a place with a higher ticket in that line moves up by one.

import type { Drop, LeaveReason, WaitlistPlace } from './api';

/** The buyer's place in the line of one variant of a drop. */
export interface Place {
  dropId: string;
  variantId: string;
  /** Units they wait for (offered together as one hold). */
  quantity: number;
  /** Orders the line; never reused. */
  ticket: number;
  /**
   * 1 for the head of the line; null while only the buyer's own
   * `waitlistJoined` frame has told of the place (it carries no position),
   * until the server is asked.
   */
  position: number | null;
}

/** The buyer's places, by drop id. */
export type Places = Readonly<Record<string, Place>>;

/** What changes the places. */
export type PlacesAction =
  /** The server answered with a place (join, read back, `ALREADY_IN_LINE`). */
  | { type: 'put'; place: WaitlistPlace }
  /** The server says the buyer waits in no line of this drop. */
  | { type: 'none'; dropId: string }
  /** A drop listing reports the buyer's places (`userWaitlist`). */
  | { type: 'listing'; drops: Drop[] }
  /** The buyer's own socket: they joined a line (perhaps in another tab). */
  | { type: 'joined'; dropId: string; variantId: string; quantity: number; ticket: number }
  /** The buyer's own socket: they left the line with this ticket. */
  | { type: 'left'; dropId: string; ticket: number }
  /** The public feed: the holder of `ticket` left the line of this variant. */
  | { type: 'moved'; dropId: string; variantId: string; ticket: number };

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** An API place as the page keeps it, or null when it cannot be read. */
export function toPlace(p: WaitlistPlace | null | undefined): Place | null {
  if (!p || typeof p !== 'object') return null;
  if (typeof p.dropId !== 'string' || typeof p.variantId !== 'string' || !isCount(p.ticket)) return null;
  return {
    dropId: p.dropId,
    variantId: p.variantId,
    quantity: isCount(p.quantity) && p.quantity > 0 ? p.quantity : 1,
    ticket: p.ticket,
    position: isCount(p.position) && p.position > 0 ? p.position : null,
  };
}

function samePlace(a: Place | undefined, b: Place): boolean {
  return (
    a !== undefined &&
    a.dropId === b.dropId &&
    a.variantId === b.variantId &&
    a.quantity === b.quantity &&
    a.ticket === b.ticket &&
    a.position === b.position
  );
}

function withPlace(places: Places, place: Place): Places {
  if (samePlace(places[place.dropId], place)) return places;
  return { ...places, [place.dropId]: place };
}

function without(places: Places, dropId: string): Places {
  if (!(dropId in places)) return places;
  const next = { ...places };
  delete next[dropId];
  return next;
}

/**
 * The places' transitions. Returns `places` itself when nothing changes, so
 * no render follows.
 */
export function placesReducer(places: Places, action: PlacesAction): Places {
  switch (action.type) {
    case 'put': {
      const place = toPlace(action.place);
      return place ? withPlace(places, place) : places;
    }
    case 'none':
      return without(places, action.dropId);
    case 'listing': {
      let next = places;
      for (const d of action.drops) {
        // A server without waiting lines lists no `userWaitlist` at all:
        // that says nothing, unlike an explicit null.
        if (!('userWaitlist' in d)) continue;
        const place = toPlace(d.userWaitlist);
        next = place && place.dropId === d.id ? withPlace(next, place) : without(next, d.id);
      }
      return next;
    }
    case 'joined': {
      const known = places[action.dropId];
      // The answer to this page's own join usually comes first, with the position.
      if (known && known.ticket === action.ticket) return places;
      return withPlace(places, {
        dropId: action.dropId,
        variantId: action.variantId,
        quantity: action.quantity > 0 ? action.quantity : 1,
        ticket: action.ticket,
        position: null,
      });
    }
    case 'left': {
      const known = places[action.dropId];
      // A place joined since has another ticket and stays.
      return known && known.ticket === action.ticket ? without(places, action.dropId) : places;
    }
    case 'moved': {
      const known = places[action.dropId];
      if (!known || known.variantId !== action.variantId || known.ticket <= action.ticket) return places;
      if (known.position === null) return places;
      // Someone ahead left. Never above the head: a position read from the
      // server just after that change must not move twice past 1.
      return { ...places, [action.dropId]: { ...known, position: Math.max(1, known.position - 1) } };
    }
  }
}

/**
 * The drops of a listing whose places the page may take: a listing asked
 * for at `askedAt` is older than what the page learned of a drop's place
 * after that (`learnedAt`, by drop id, on the same clock), so it must not
 * undo a join or a leave answered while it was on its way.
 */
export function listingNewerThan(drops: Drop[], learnedAt: ReadonlyMap<string, number>, askedAt: number): Drop[] {
  return drops.filter((d) => (learnedAt.get(d.id) ?? -Infinity) < askedAt);
}

/** "You are #2 in line", or without the number while the server has not said it yet. */
export function placeText(place: Place): string {
  return place.position === null ? 'You are in line' : `You are #${place.position} in line`;
}

/** How many buyers wait in a line, in words: "Nobody waits", "1 waits", "3 wait". */
export function lineLengthText(length: number): string {
  if (length <= 0) return 'Nobody waits in line';
  return length === 1 ? '1 buyer waits in line' : `${length} buyers wait in line`;
}

/** Why the buyer left a line, when the page should say so; null when nothing needs saying. */
export function leaveNotice(reason: LeaveReason, dropName: string): { title: string; body: string } | null {
  switch (reason) {
    case 'skipped':
      return {
        title: 'Your turn was skipped',
        body: `A unit of ${dropName} freed up for you, but you were holding units of this drop or had reached its limit per buyer, so you left the line.`,
      };
    case 'left':
      return { title: 'You left the line', body: `You no longer wait for ${dropName} (left from another tab or device).` };
    case 'offered':
      // The offered hold's own frame came first and told the buyer.
      return null;
  }
}

/**
 * A variant's line length as drops and stock frames report it: 0 from a
 * server without waiting lines.
 */
export function lineLength(v: { waitlistLength?: unknown } | undefined): number {
  const n = v?.waitlistLength;
  return isCount(n) ? n : 0;
}
