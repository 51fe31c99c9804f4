import { describe, expect, it } from 'vitest';
import type { Purchase } from './api';
import { appendPage, boughtByDrop, withNewestPage } from './purchases';

function purchase(id: string, dropId: string, quantity: number, status: Purchase['status'] = 'completed'): Purchase {
  return {
    id,
    reservationId: `r-${id}`,
    dropId,
    variantId: 'v1',
    buyer: { displayName: 'me' },
    quantity,
    amountPaid: '10.00',
    status,
    createdAt: '2026-01-01T00:00:00Z',
    cancelledAt: status === 'cancelled' ? '2026-01-01T00:05:00Z' : null,
  } as Purchase;
}

describe('what counts toward the limit', () => {
  it('sums completed units per drop and leaves cancelled purchases out', () => {
    expect(
      boughtByDrop([
        purchase('p1', 'a', 2),
        purchase('p2', 'a', 1, 'cancelled'),
        purchase('p3', 'b', 1),
        purchase('p4', 'a', 1),
      ]),
    ).toEqual({ a: 3, b: 1 });
    expect(boughtByDrop([])).toEqual({});
  });
});

describe('paging', () => {
  it('appends an older page after what is shown, without listing a purchase twice', () => {
    const shown = [purchase('p5', 'a', 1), purchase('p4', 'a', 1)];
    const older = [purchase('p4', 'a', 1, 'cancelled'), purchase('p3', 'a', 1)];
    const next = appendPage(shown, older);
    expect(next.map((p) => [p.id, p.status])).toEqual([
      ['p5', 'completed'],
      ['p4', 'cancelled'],
      ['p3', 'completed'],
    ]);
  });
});

describe('reading the first page again', () => {
  const ids = (n: number[]) => n.map((i) => purchase(`p${i}`, 'a', 1));

  it('is just the first page when nothing older was loaded', () => {
    const first = { purchases: ids([12, 11, 10]), next: 'p10' };
    expect(withNewestPage({ purchases: ids([11, 10, 9]), next: 'p9' }, first)).toBe(first);
    const all = { purchases: ids([3, 2, 1]), next: null };
    expect(withNewestPage({ purchases: ids([2, 1]), next: null }, all)).toBe(all);
  });

  it('keeps the older pages already shown after the fresh first page, each once', () => {
    const shown = { purchases: ids([11, 10, 9, 8, 7, 6]), next: 'p6' };
    const first = { purchases: ids([12, 11, 10]), next: 'p10' };
    const next = withNewestPage(shown, first);
    expect(next.purchases.map((p) => p.id)).toEqual(['p12', 'p11', 'p10', 'p9', 'p8', 'p7', 'p6']);
    expect(next.next).toBe('p6');
  });
});
