// Draw drops on the page: the signed-in buyer's entries, where a drop is in
// its draw, and what the draw gave the buyer. Pure functions, so they are
// unit tested.
//
// Entries live on the server (the drop listing's `userEntry`, `GET
// /api/drops/:id/entries`); the page learns of the draw from the public
// `drawCompleted` frame and then reads its own entry back for the outcome.
// A winner's hold arrives on their own socket (`holdOffered`), a waiting
// entrant's place is an ordinary waiting-list place: the card shows those
// with the panels it already has.

import type { Drop, DrawCompletedFrame, Entry, EntryOutcome, WsMessage } from './api';
import type { ReceiptStanding } from './drawCheck';
import type { Place } from './waitlist';

/** The buyer's entries, by drop id. */
export type Entries = Readonly<Record<string, Entry>>;

/** What changes the entries. */
export type EntriesAction =
  /** The server answered with the buyer's entry (enter, read back). */
  | { type: 'put'; entry: Entry }
  /** The server says the buyer has no entry to this drop (withdrawn, never entered). */
  | { type: 'none'; dropId: string }
  /** A drop listing reports the buyer's entries (`userEntry`). */
  | { type: 'listing'; drops: Drop[] };

const OUTCOMES: readonly string[] = ['won', 'waiting', 'lost'];

function isPosition(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
}

/** An API entry as the page keeps it, or null when it cannot be read. */
export function toEntry(e: unknown): Entry | null {
  if (!e || typeof e !== 'object') return null;
  const x = e as Record<string, unknown>;
  if (typeof x.dropId !== 'string' || typeof x.variantId !== 'string' || typeof x.receipt !== 'string') return null;
  const outcome = typeof x.outcome === 'string' && OUTCOMES.includes(x.outcome) ? (x.outcome as EntryOutcome) : null;
  return {
    dropId: x.dropId,
    variantId: x.variantId,
    receipt: x.receipt.toLowerCase(),
    enteredAt: typeof x.enteredAt === 'string' ? x.enteredAt : '',
    outcome,
    drawPosition: isPosition(x.drawPosition) ? x.drawPosition : null,
    reservationId: typeof x.reservationId === 'string' ? x.reservationId : null,
  };
}

function sameEntry(a: Entry | undefined, b: Entry): boolean {
  return (
    a !== undefined &&
    a.dropId === b.dropId &&
    a.variantId === b.variantId &&
    a.receipt === b.receipt &&
    a.enteredAt === b.enteredAt &&
    a.outcome === b.outcome &&
    a.drawPosition === b.drawPosition &&
    a.reservationId === b.reservationId
  );
}

function withEntry(entries: Entries, entry: Entry): Entries {
  if (sameEntry(entries[entry.dropId], entry)) return entries;
  return { ...entries, [entry.dropId]: entry };
}

function without(entries: Entries, dropId: string): Entries {
  if (!(dropId in entries)) return entries;
  const next = { ...entries };
  delete next[dropId];
  return next;
}

/**
 * The entries' transitions. Returns `entries` itself when nothing changes,
 * so no render follows.
 */
export function entriesReducer(entries: Entries, action: EntriesAction): Entries {
  switch (action.type) {
    case 'put': {
      const entry = toEntry(action.entry);
      return entry ? withEntry(entries, entry) : entries;
    }
    case 'none':
      return without(entries, action.dropId);
    case 'listing': {
      let next = entries;
      for (const d of action.drops) {
        // A server without draws lists no `userEntry` at all: that says
        // nothing, unlike an explicit null.
        if (!('userEntry' in d)) continue;
        const entry = toEntry(d.userEntry);
        next = entry && entry.dropId === d.id ? withEntry(next, entry) : without(next, d.id);
      }
      return next;
    }
  }
}

/**
 * The drops of a listing whose entries the page may take: one asked for
 * before the page last heard of a drop's entry must not undo an enter or a
 * withdraw answered while it was on its way (as with waiting-list places).
 */
export function entriesNewerThan(drops: Drop[], learnedAt: ReadonlyMap<string, number>, askedAt: number): Drop[] {
  return drops.filter((d) => (learnedAt.get(d.id) ?? -Infinity) < askedAt);
}

/** Whether the drop sells by a draw. */
export function isDraw(drop: { mode?: string | null }): boolean {
  return drop.mode === 'draw';
}

/**
 * Where a draw drop is at `now` (server clock):
 * - `upcoming`: not started; entries open at the start;
 * - `open`: entries taken until `drawAt`;
 * - `drawing`: `drawAt` has come, the result is not out yet;
 * - `drawn`: the draw happened; the drop sells first come from now on.
 * Null for a first-come drop.
 */
export type DrawPhase = 'upcoming' | 'open' | 'drawing' | 'drawn';

/** The phase of a drop's draw at `now`, or null for a first-come drop. */
export function drawPhase(
  drop: { mode?: string | null; startsAt?: string | null; drawAt?: string | null; drawnAt?: string | null },
  now: number,
): DrawPhase | null {
  if (!isDraw(drop)) return null;
  if (drop.drawnAt) return 'drawn';
  const drawAt = drop.drawAt ? Date.parse(drop.drawAt) : NaN;
  // The server's word (drawnAt) decides "drawn"; the clock only says when
  // entries close, so a late draw reads "drawing" rather than open.
  if (!Number.isNaN(drawAt) && drawAt <= now) return 'drawing';
  const startsAt = drop.startsAt ? Date.parse(drop.startsAt) : NaN;
  if (!Number.isNaN(startsAt) && startsAt > now) return 'upcoming';
  return 'open';
}

/** Milliseconds until the draw at `now`, never below 0; null without a draw time. */
export function untilDraw(drop: { drawAt?: string | null }, now: number): number | null {
  const drawAt = drop.drawAt ? Date.parse(drop.drawAt) : NaN;
  return Number.isNaN(drawAt) ? null : Math.max(0, drawAt - now);
}

/** A receipt in short form for the card: the first 8 hex digits, "a1b2c3d4…". */
export function shortReceipt(receipt: string): string {
  return receipt.length > 8 ? `${receipt.slice(0, 8)}…` : receipt;
}

/** A 64-hex hash in short form, first and last 8 digits: "a1b2c3d4…99aa00ff". */
export function shortHash(hash: string): string {
  return hash.length > 20 ? `${hash.slice(0, 8)}…${hash.slice(-8)}` : hash;
}

/**
 * What the card shows of a draw for the signed-in buyer:
 * - `enter`: entries are open and they have no entry;
 * - `entered`: they are in, entries open (they may withdraw);
 * - `closed`: entries have closed, no result yet (`entered` says whether they are in);
 * - `won`: they won; `hold` is their offered hold while it lasts;
 * - `waiting`: they wait in line; `place` once the page knows it;
 * - `lost`: not drawn, and no line (or the line has moved past them);
 * - `pending`: the draw happened and they entered, the outcome is being read;
 * - `none`: nothing of the draw to show (first come, not started, or drawn
 *   without them): the ordinary card.
 */
export type DrawView =
  | { kind: 'none' }
  | { kind: 'enter' }
  | { kind: 'entered'; entry: Entry }
  | { kind: 'closed'; entry: Entry | null }
  | { kind: 'won'; entry: Entry; held: boolean }
  | { kind: 'waiting'; entry: Entry; place: Place | null }
  | { kind: 'lost'; entry: Entry }
  | { kind: 'pending'; entry: Entry };

/**
 * Derives what the card shows from the drop's phase and what the page knows
 * of the buyer: their entry, their hold on the drop, their place in its
 * line. A hold or a place the server reported beats an outcome the page has
 * not read back yet: a winner's offered hold comes on their socket before
 * the public `drawCompleted`.
 */
export function drawView(
  phase: DrawPhase | null,
  entry: Entry | undefined,
  hold: { id: string; offered: boolean } | undefined,
  place: Place | undefined,
): DrawView {
  if (phase === null || phase === 'upcoming') return { kind: 'none' };
  if (phase === 'open') return entry ? { kind: 'entered', entry } : { kind: 'enter' };
  if (phase === 'drawing') return { kind: 'closed', entry: entry ?? null };
  if (!entry) return { kind: 'none' };
  const reservationId = entry.reservationId ?? null;
  const outcome = entry.outcome ?? null;
  const winningHold = hold !== undefined && (reservationId !== null ? reservationId === hold.id : outcome === null && hold.offered);
  if (outcome === 'won' || winningHold) return { kind: 'won', entry, held: winningHold };
  if (outcome === 'waiting') return { kind: 'waiting', entry, place: place ?? null };
  if (outcome === 'lost') return { kind: 'lost', entry };
  // Outcome not read yet: a place in line already tells it.
  if (place) return { kind: 'waiting', entry, place };
  return { kind: 'pending', entry };
}

/** The headline of a draw result, in words. */
export function resultText(view: DrawView): string | null {
  switch (view.kind) {
    case 'won':
      return 'You won the draw';
    case 'waiting':
      return 'Not drawn this time: you wait in line';
    case 'lost':
      return 'Not drawn this time';
    case 'pending':
      return 'The draw is done: reading your result…';
    default:
      return null;
  }
}

/** The `drawCompleted` frame's fields, or null when the frame is not one (or cannot be read). */
export function readDrawCompleted(msg: WsMessage | Record<string, unknown>): DrawCompletedFrame | null {
  const m = msg as Record<string, unknown>;
  if (m.type !== 'drawCompleted' || typeof m.dropId !== 'string' || typeof m.drawnAt !== 'string') return null;
  const count = (n: unknown) => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0);
  return {
    type: 'drawCompleted',
    dropId: m.dropId,
    drawnAt: m.drawnAt,
    entries: count(m.entries),
    winners: count(m.winners),
    waiting: count(m.waiting),
  };
}

/**
 * Whether the seed hash a draw published is the one the page showed before
 * the draw: `unknown` when it showed none (opened after the draw).
 */
export function seedHashAgreement(shownBefore: string | null, published: string): 'same' | 'differs' | 'unknown' {
  if (!shownBefore) return 'unknown';
  return shownBefore.toLowerCase() === published.toLowerCase() ? 'same' : 'differs';
}

/**
 * Where the viewer's receipt landed, in words; `sizeName` names a variant
 * (null for a drop without a size choice).
 */
export function standingText(standing: ReceiptStanding, sizeName: (variantId: string) => string | null): string {
  const size = (id: string) => {
    const name = sizeName(id);
    return name ? ` (size ${name})` : '';
  };
  switch (standing.status) {
    case 'invalid':
      return standing.message;
    case 'notListed':
      return `Your receipt ${shortReceipt(standing.receipt)} is not in the published entry list.`;
    case 'won':
      return `Your receipt ${shortReceipt(standing.receipt)} won${size(standing.variantId)}: drawn #${standing.place}.`;
    case 'waiting':
      return `Your receipt ${shortReceipt(standing.receipt)} was not drawn${size(standing.variantId)}: #${standing.place} of ${standing.of} after the winners.`;
    case 'drawFailed':
      return `Your receipt ${shortReceipt(standing.receipt)} is listed${size(standing.variantId)}, but the draw does not check out.`;
  }
}
