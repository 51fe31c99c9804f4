import { describe, expect, it } from 'vitest';
import type { Drop } from './api';
import { adminState, cleanMessage, editFormFrom, hasStarted, isFormProblem, parseSizes, patchFrom } from './adminForm';

function drop(over: Partial<Drop> = {}): Drop {
  return {
    id: 'd1',
    name: 'Air Max',
    price: '199.99',
    totalStock: 15,
    availableStock: 15,
    reservedStock: 0,
    soldStock: 0,
    startsAt: null,
    endsAt: null,
    holdSeconds: 60,
    topPurchasers: [],
    variants: [
      { id: 'vs', name: 'S', totalStock: 5, availableStock: 5, reservedStock: 0, soldStock: 0, waitlistLength: 0 },
      { id: 'vm', name: 'M', totalStock: 10, availableStock: 10, reservedStock: 0, soldStock: 0, waitlistLength: 0 },
    ],
    maxPerBuyer: 2,
    paused: false,
    ...over,
  } as Drop;
}

describe('sizes typed as text', () => {
  it('reads name=stock pairs separated by commas or lines', () => {
    expect(parseSizes('S=10, M: 12\nL = 5')).toEqual({
      variants: [
        { name: 'S', totalStock: 10 },
        { name: 'M', totalStock: 12 },
        { name: 'L', totalStock: 5 },
      ],
    });
    expect(parseSizes('  ')).toEqual({ variants: [] });
    expect(parseSizes('EU 42=3')).toEqual({ variants: [{ name: 'EU 42', totalStock: 3 }] });
  });

  it('names the part it cannot read, and a size listed twice', () => {
    expect(parseSizes('S=10, M')).toMatchObject({ field: 'variants', message: expect.stringContaining('“M”') });
    expect(parseSizes('S=1, S=2')).toMatchObject({ field: 'variants', message: expect.stringContaining('twice') });
  });
});

describe('the edit form', () => {
  it('sends nothing when nothing changed', () => {
    const d = drop();
    expect(patchFrom(d, editFormFrom(d))).toEqual({});
  });

  it('sends only the changed fields, stock per size by variant id', () => {
    const d = drop();
    const form = { ...editFormFrom(d), name: 'Air Max 90', maxPerBuyer: '3', stock: { vs: '5', vm: '12' } };
    expect(patchFrom(d, form)).toEqual({ name: 'Air Max 90', maxPerBuyer: 3, variants: [{ id: 'vm', totalStock: 12 }] });
  });

  it('edits a one-size drop by its total stock', () => {
    const d = drop({
      variants: [{ id: 'v1', name: 'Standard', totalStock: 5, availableStock: 5, reservedStock: 0, soldStock: 0, waitlistLength: 0 }],
    });
    expect(patchFrom(d, { ...editFormFrom(d), stock: { v1: '8' } })).toEqual({ totalStock: 8 });
  });

  it('clears a time set to empty and reports a stock that is not a number by its field', () => {
    const d = drop({ endsAt: '2030-01-01T10:00:00Z' });
    expect(patchFrom(d, { ...editFormFrom(d), endsAt: '' })).toEqual({ endsAt: null });
    const bad = patchFrom(d, { ...editFormFrom(d), stock: { vs: 'lots', vm: '10' } });
    expect(isFormProblem(bad)).toBe(true);
    expect(bad).toMatchObject({ field: 'stock-vs', message: 'Stock of S must be a whole number.' });
  });

  it('locks the price once the drop has started', () => {
    const now = Date.parse('2026-06-01T12:00:00Z');
    expect(hasStarted(drop({ startsAt: null }), now)).toBe(true);
    expect(hasStarted(drop({ startsAt: '2026-06-01T11:00:00Z' }), now)).toBe(true);
    expect(hasStarted(drop({ startsAt: '2026-06-01T13:00:00Z' }), now)).toBe(false);
  });
});

describe('admin list', () => {
  it('says whether a drop is ended, paused, upcoming or on sale', () => {
    const now = Date.parse('2026-06-01T12:00:00Z');
    expect(adminState(drop({ endsAt: '2026-06-01T11:00:00Z', paused: true }), now)).toBe('ended');
    expect(adminState(drop({ paused: true }), now)).toBe('paused');
    expect(adminState(drop({ startsAt: '2026-06-02T00:00:00Z' }), now)).toBe('upcoming');
    expect(adminState(drop(), now)).toBe('onSale');
  });

  it('turns the server’s field-prefixed messages into sentences', () => {
    expect(cleanMessage('price: invalid price: must have at most 2 decimals', 'price')).toBe('Must have at most 2 decimals.');
    expect(cleanMessage('variants[1].totalStock: must be between 0 and 1000000', 'variants[1].totalStock')).toBe(
      'Must be between 0 and 1000000.',
    );
  });
});
