// The signed-in buyer's purchase records: what counts toward a drop's
// per-buyer limit, and how pages of the list join. Pure, so unit tested.

import type { Purchase } from './api';

/**
 * Units bought per drop, counting completed purchases only: a purchase the
 * shop cancelled frees its units from the buyer's limit.
 */
export function boughtByDrop(purchases: readonly Purchase[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of purchases) {
    if (p.status !== 'completed') continue;
    out[p.dropId] = (out[p.dropId] ?? 0) + (Number.isInteger(p.quantity) && p.quantity > 0 ? p.quantity : 1);
  }
  return out;
}

/**
 * `older` appended to `shown`, newest first. A purchase already shown (a
 * page boundary that moved while paging) is replaced by its newer copy in
 * place rather than listed twice.
 */
export function appendPage(shown: readonly Purchase[], older: readonly Purchase[]): Purchase[] {
  const byId = new Map(older.map((p) => [p.id, p]));
  const kept = shown.map((p) => byId.get(p.id) ?? p);
  const seen = new Set(kept.map((p) => p.id));
  return [...kept, ...older.filter((p) => !seen.has(p.id))];
}

/** What the purchases list shows: purchases newest first, and the cursor of the next page. */
export interface Shown {
  purchases: Purchase[];
  next: string | null;
}

/**
 * The list after reading its first page again (the buyer bought something
 * meanwhile): the fresh first page, then the older purchases already shown
 * beyond it, so a buyer who paged back keeps their place. Without older
 * pages loaded it is just the first page.
 */
export function withNewestPage(shown: Shown, first: Shown): Shown {
  const last = first.purchases[first.purchases.length - 1];
  if (first.next === null || last === undefined || shown.purchases.length <= first.purchases.length) return first;
  const fresh = new Set(first.purchases.map((p) => p.id));
  const at = shown.purchases.findIndex((p) => p.id === last.id);
  // Purchases after the first page's last one are older than all of it.
  const older = (at >= 0 ? shown.purchases.slice(at + 1) : shown.purchases).filter((p) => !fresh.has(p.id));
  return { purchases: [...first.purchases, ...older], next: shown.next };
}
