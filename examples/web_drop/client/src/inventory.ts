// What a buyer may reserve of a drop: which sizes, how many, and why not.
// Pure functions of the drop's live state, so they are unit tested.

import type { Drop, Variant } from './api';

/** One size as the picker shows it. */
export interface SizeOption {
  id: string;
  name: string;
  /** Units free for sale right now. */
  available: number;
  /** No unit free for sale right now. */
  soldOut: boolean;
  /**
   * Sold-out sizes stay listed; they can be chosen only when the drop has a
   * waiting list (to join that size's line).
   */
  disabled: boolean;
}

/** What the size logic reads of a drop: its variants and whether it has waiting lines. */
export type SizedDrop = Pick<Drop, 'variants'> & { waitlist?: boolean };

/** A drop's variants, or none for a drop from a server without them. */
export function variantsOf(drop: Pick<Drop, 'variants'>): Variant[] {
  return Array.isArray(drop.variants) ? drop.variants : [];
}

/** Whether the card shows a size picker: only when there is a choice to make. */
export function showsSizePicker(drop: Pick<Drop, 'variants'>): boolean {
  return variantsOf(drop).length > 1;
}

/** Every size of the drop, in the drop's order; sold-out ones disabled unless the drop has waiting lines. */
export function sizeOptions(drop: SizedDrop): SizeOption[] {
  return variantsOf(drop).map((v) => ({
    id: v.id,
    name: v.name,
    available: Math.max(0, v.availableStock),
    soldOut: v.availableStock <= 0,
    disabled: v.availableStock <= 0 && drop.waitlist !== true,
  }));
}

/**
 * The size the card acts on: the buyer's choice while it still exists and
 * has stock (or, on a drop with waiting lines, even sold out: its line is
 * what they want), else the first size with stock, else the choice or the
 * first size (so a sold-out drop still names one). Null for a drop without
 * variants.
 */
export function chosenSize(drop: SizedDrop, choice: string | null): Variant | null {
  const variants = variantsOf(drop);
  const picked = choice === null ? undefined : variants.find((v) => v.id === choice);
  if (picked && (picked.availableStock > 0 || drop.waitlist === true)) return picked;
  return variants.find((v) => v.availableStock > 0) ?? picked ?? variants[0] ?? null;
}

/**
 * Units the buyer may still take in this drop: its `maxPerBuyer` less what
 * they hold and have bought (cancelled purchases do not count).
 */
export function allowance(maxPerBuyer: number, owned: number): number {
  return Math.max(0, maxPerBuyer - Math.max(0, owned));
}

/**
 * The most units one reserve may ask for: what the buyer may still take,
 * and never more than the chosen size has free.
 */
export function maxQuantity(maxPerBuyer: number, owned: number, available: number): number {
  return Math.max(0, Math.min(allowance(maxPerBuyer, owned), available));
}

/** Whether the card shows a quantity choice: hidden when only one unit per buyer is allowed. */
export function showsQuantity(maxPerBuyer: number): boolean {
  return maxPerBuyer > 1;
}

/** The quantity to ask for: the buyer's choice, brought within 1..`max` (1 when nothing is allowed). */
export function clampQuantity(choice: number, max: number): number {
  if (!Number.isFinite(choice) || choice < 1) return 1;
  return Math.max(1, Math.min(Math.floor(choice), max));
}

function units(n: number): string {
  return n === 1 ? 'one' : String(n);
}

/**
 * The buyer's limit in plain words once it is reached, else null:
 * "You can buy 2 of this drop and you have 2 already."
 */
export function limitText(maxPerBuyer: number, owned: number): string | null {
  if (owned < maxPerBuyer) return null;
  if (maxPerBuyer === 1) return 'You can buy one of this drop and you have it already.';
  return `You can buy ${maxPerBuyer} of this drop and you have ${owned} already.`;
}

/**
 * What the buyer has of this drop while they may still take more, else
 * null: "You have one; you can buy 2 more."
 */
export function ownedText(maxPerBuyer: number, owned: number): string | null {
  if (owned <= 0 || owned >= maxPerBuyer) return null;
  return `You have ${units(owned)}; you can buy ${units(maxPerBuyer - owned)} more.`;
}

/**
 * `price × quantity` on the exact decimal string the API sends (at most 2
 * decimals): `"199.99" × 3 = "599.97"`. Computed in integer cents, never in
 * floating point. A price the page cannot read is returned unchanged.
 */
export function totalPrice(price: string | number, quantity: number): string {
  const text = String(price).trim();
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text);
  if (!m || !Number.isInteger(quantity) || quantity < 0) return text;
  const fraction = m[2] ?? '';
  const cents = BigInt(m[1] ?? '0') * 100n + BigInt(fraction.padEnd(2, '0') || '0');
  const total = cents * BigInt(quantity);
  const whole = total / 100n;
  const rest = total % 100n;
  // Keep the API's style: a whole price stays whole ("230" × 2 = "460").
  if (fraction === '' && rest === 0n) return whole.toString();
  return `${whole.toString()}.${rest.toString().padStart(2, '0')}`;
}

/** What a hold is of: "M × 2", "× 2" for a one-variant drop, "M" for one unit of a size. */
export function holdLabel(sizeName: string | null, quantity: number): string {
  const size = sizeName ?? '';
  if (quantity <= 1) return size;
  return size ? `${size} × ${quantity}` : `× ${quantity}`;
}
