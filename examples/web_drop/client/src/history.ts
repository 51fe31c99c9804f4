// A drop's history (the event log's entries for one drop) in plain words.

import type { LogEntry } from './api';
import { formatPrice } from './format';

/** A buyer id shortened for a list: long ids keep their first 6 and last 4 characters. */
export function shortBuyerId(id: string): string {
  const chars = Array.from(id);
  if (chars.length <= 12) return id;
  return `${chars.slice(0, 6).join('')}…${chars.slice(-4).join('')}`;
}

/** What the history needs to name things: the drop's variants, and names learnt from earlier entries. */
export interface HistoryContext {
  /** Variant id → name; names are shown only when the drop has more than one variant. */
  variants: ReadonlyMap<string, string>;
  /** Buyer id → the display name they held under (entries about releases, expiries and cancellations carry no name). */
  names: ReadonlyMap<string, string>;
}

/** One line of the history. */
export interface HistoryLine {
  /** The entry's number in the log (a stable React key). */
  seq: number;
  /** When it committed (RFC 3339). */
  at: string;
  /** The entry's `type`. */
  kind: LogEntry['type'];
  /** Who did it: "alice (b7f3a1…c21a)", "The shop" or, for a buyer whose name is unknown, the short id. */
  who: string;
  /** What happened. */
  text: string;
}

/** Display names by buyer id, from the entries that carry one (the latest wins). */
export function namesFrom(entries: readonly LogEntry[], into: Map<string, string> = new Map()): Map<string, string> {
  for (const e of entries) {
    if ((e.type === 'holdCreated' || e.type === 'purchaseCompleted' || e.type === 'waitlistJoined') && e.displayName) {
      into.set(e.buyerId, e.displayName);
    }
  }
  return into;
}

/** Variant names by id, for a drop's variants. */
export function variantNames(variants: readonly { id: string; name: string }[] | null | undefined): Map<string, string> {
  return new Map((variants ?? []).map((v) => [v.id, v.name]));
}

function units(quantity: number, variantId: string, ctx: HistoryContext): string {
  const base = `${quantity} unit${quantity === 1 ? '' : 's'}`;
  const name = ctx.variants.size > 1 ? ctx.variants.get(variantId) : undefined;
  return name ? `${base} of ${name}` : base;
}

function buyer(buyerId: string, displayName: string | undefined, ctx: HistoryContext): string {
  const name = displayName || ctx.names.get(buyerId);
  const short = shortBuyerId(buyerId);
  return name ? `${name} (${short})` : short;
}

/** A time of day, as the admin's clock shows it. */
export function formatTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const LEFT: Record<string, string> = {
  left: 'Left the line',
  offered: 'Left the line: their turn came',
  skipped: 'Was skipped in the line (holding units of the drop, or at the limit)',
};

const ACTION: Record<string, string> = {
  edited: 'Edited the drop',
  paused: 'Paused the drop',
  resumed: 'Resumed the drop',
  ended: 'Ended the sale',
};

/** One entry as a line of the history. */
export function describeEntry(e: LogEntry, ctx: HistoryContext): HistoryLine {
  const line = (who: string, text: string): HistoryLine => ({ seq: e.seq, at: e.at, kind: e.type, who, text });
  switch (e.type) {
    case 'dropCreated':
      return line(
        'The shop',
        `Created “${e.drop.name}”: ${e.drop.totalStock} unit${e.drop.totalStock === 1 ? '' : 's'} at ${formatPrice(e.drop.price)}`,
      );
    case 'dropUpdated':
      return line('The shop', ACTION[e.action] ?? `Changed the drop (${e.action})`);
    case 'holdCreated':
      return line(
        buyer(e.buyerId, e.displayName, ctx),
        e.offered
          ? `Was offered ${units(e.quantity, e.variantId, ctx)} from the line, held until ${formatTime(e.expiresAt)}`
          : `Held ${units(e.quantity, e.variantId, ctx)} until ${formatTime(e.expiresAt)}`,
      );
    case 'waitlistJoined':
      return line(buyer(e.buyerId, e.displayName, ctx), `Joined the line for ${units(e.quantity, e.variantId, ctx)} (ticket ${e.ticket})`);
    case 'waitlistLeft':
      return line(
        buyer(e.buyerId, undefined, ctx),
        `${LEFT[e.reason] ?? `Left the line (${e.reason})`}, waiting for ${units(e.quantity, e.variantId, ctx)} (ticket ${e.ticket})`,
      );
    case 'purchaseCompleted':
      return line(
        buyer(e.buyerId, e.displayName, ctx),
        `Bought ${units(e.quantity, e.variantId, ctx)} for ${formatPrice(e.amount)}`,
      );
    case 'holdReleased':
      return line(buyer(e.buyerId, undefined, ctx), `Released a hold of ${units(e.quantity, e.variantId, ctx)}`);
    case 'holdExpired':
      return line(buyer(e.buyerId, undefined, ctx), `Let a hold of ${units(e.quantity, e.variantId, ctx)} expire`);
    case 'purchaseCancelled':
      return line(
        buyer(e.buyerId, undefined, ctx),
        `Purchase of ${units(e.quantity, e.variantId, ctx)} cancelled by the shop (${formatPrice(e.amount)} to refund)`,
      );
    case 'drawCompleted':
      return line('The shop', drawText(e));
  }
}

function count(n: unknown): number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/** A draw's log entry in words: "Drew 1 winner from 3 entries; 2 put in line". */
export function drawText(d: { entries?: unknown; winners?: unknown; waiting?: unknown }): string {
  const entries = count(d.entries);
  const winners = count(d.winners);
  const waiting = count(d.waiting);
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const rest = waiting > 0 ? `; ${waiting} put in line` : '';
  return `Drew ${plural(winners, 'winner', 'winners')} from ${plural(entries, 'entry', 'entries')}${rest}`;
}
