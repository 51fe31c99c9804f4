import { describe, expect, it } from 'vitest';
import type { Drop } from './api';
import {
  adminState,
  cleanMessage,
  editFormFrom,
  hasStarted,
  isFormProblem,
  parseSizes,
  patchFrom,
  saleModeFields,
  type SaleModeForm,
} from './adminForm';

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

describe('sale mode', () => {
  // datetime-local values are wall-clock times in the browser's zone.
  const local = (text: string) => new Date(text).getTime();
  const now = local('2030-01-01T10:00');
  const form = (over: Partial<SaleModeForm> = {}): SaleModeForm => ({
    mode: 'draw',
    drawAt: '2030-01-01T12:00:30',
    beaconName: '',
    startsAt: '',
    endsAt: '',
    ...over,
  });

  it('sends nothing for a first-come drop, whatever the hidden draw fields hold', () => {
    expect(saleModeFields(form({ mode: 'firstCome', beaconName: 'drand' }), now)).toEqual({});
  });

  it('sends the mode and the draw time as an instant, the beacon name trimmed when given', () => {
    expect(saleModeFields(form(), now)).toEqual({ mode: 'draw', drawAt: new Date('2030-01-01T12:00:30').toISOString() });
    expect(saleModeFields(form({ beaconName: '  drand round 7 ' }), now)).toMatchObject({ beaconName: 'drand round 7' });
  });

  it('needs a draw time in the future, after the start and before the end', () => {
    expect(saleModeFields(form({ drawAt: '' }), now)).toEqual({ field: 'drawAt', message: 'Pick when the draw happens.' });
    expect(saleModeFields(form({ drawAt: 'soon' }), now)).toMatchObject({ field: 'drawAt', message: expect.stringContaining('date and time') });
    expect(saleModeFields(form({ drawAt: '2030-01-01T09:00' }), now)).toMatchObject({ field: 'drawAt', message: 'The draw must be in the future.' });
    expect(saleModeFields(form({ startsAt: '2030-01-01T12:00:30' }), now)).toMatchObject({
      field: 'drawAt',
      message: expect.stringContaining('after the start'),
    });
    expect(saleModeFields(form({ endsAt: '2030-01-01T12:00:30' }), now)).toMatchObject({
      field: 'drawAt',
      message: 'The draw must come before the end.',
    });
    const fits = saleModeFields(form({ startsAt: '2030-01-01T11:00', endsAt: '2030-01-01T13:00' }), now);
    expect(isFormProblem(fits)).toBe(false);
  });

  it('refuses a beacon name the server would: too long, or with control characters', () => {
    expect(saleModeFields(form({ beaconName: 'x'.repeat(200) }), now)).toMatchObject({ beaconName: 'x'.repeat(200) });
    expect(saleModeFields(form({ beaconName: 'x'.repeat(201) }), now)).toMatchObject({ field: 'beaconName' });
    expect(saleModeFields(form({ beaconName: 'a\u0007b' }), now)).toMatchObject({ field: 'beaconName' });
    expect(saleModeFields(form({ beaconName: 'a\u0085b' }), now)).toMatchObject({ field: 'beaconName' });
  });
});
