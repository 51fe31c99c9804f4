import { describe, expect, it } from 'vitest';
import type { Variant } from './api';
import {
  allowance,
  chosenSize,
  clampQuantity,
  holdLabel,
  limitText,
  maxQuantity,
  ownedText,
  showsQuantity,
  showsSizePicker,
  sizeOptions,
  totalPrice,
} from './inventory';

function size(id: string, availableStock: number): Variant {
  return { id, name: id.toUpperCase(), totalStock: 10, availableStock, reservedStock: 0, soldStock: 10 - availableStock, waitlistLength: 0 };
}

describe('the size picker', () => {
  it('is shown only when there is more than one size', () => {
    expect(showsSizePicker({ variants: [size('m', 3)] })).toBe(false);
    expect(showsSizePicker({ variants: [size('s', 0), size('m', 3)] })).toBe(true);
  });

  it('lists every size in order and disables exactly the sold-out ones', () => {
    const options = sizeOptions({ variants: [size('s', 0), size('m', 3), size('l', 0), size('xl', 1)] });
    expect(options.map((o) => [o.name, o.disabled, o.available])).toEqual([
      ['S', true, 0],
      ['M', false, 3],
      ['L', true, 0],
      ['XL', false, 1],
    ]);
  });

  it('keeps the buyer’s choice while it has stock, and moves off a size that sells out', () => {
    const drop = { variants: [size('s', 2), size('m', 3)] };
    expect(chosenSize(drop, 'm')?.id).toBe('m');
    expect(chosenSize(drop, null)?.id).toBe('s');
    const mSoldOut = { variants: [size('s', 2), size('m', 0)] };
    expect(chosenSize(mSoldOut, 'm')?.id).toBe('s');
    const allOut = { variants: [size('s', 0), size('m', 0)] };
    expect(chosenSize(allOut, 'm')?.id).toBe('m');
    expect(chosenSize(allOut, null)?.id).toBe('s');
    expect(chosenSize({ variants: [] }, null)).toBeNull();
  });
});

describe('quantity', () => {
  it('is offered only when a buyer may take more than one', () => {
    expect(showsQuantity(1)).toBe(false);
    expect(showsQuantity(2)).toBe(true);
  });

  it('never exceeds what the buyer may still take nor what the size has free', () => {
    expect(maxQuantity(4, 0, 10)).toBe(4);
    expect(maxQuantity(4, 1, 10)).toBe(3);
    expect(maxQuantity(4, 1, 2)).toBe(2);
    expect(maxQuantity(4, 4, 10)).toBe(0);
    expect(maxQuantity(4, 6, 10)).toBe(0);
    expect(maxQuantity(4, 0, 0)).toBe(0);
    expect(allowance(2, 5)).toBe(0);
  });

  it('brings a stale choice back within range', () => {
    expect(clampQuantity(3, 2)).toBe(2);
    expect(clampQuantity(0, 5)).toBe(1);
    expect(clampQuantity(Number.NaN, 5)).toBe(1);
    expect(clampQuantity(2, 0)).toBe(1);
    expect(clampQuantity(2, 5)).toBe(2);
  });
});

describe('the limit in plain words', () => {
  it('says nothing while the buyer may take more', () => {
    expect(limitText(2, 0)).toBeNull();
    expect(limitText(2, 1)).toBeNull();
  });

  it('explains a reached limit with both numbers', () => {
    expect(limitText(2, 2)).toBe('You can buy 2 of this drop and you have 2 already.');
    expect(limitText(3, 4)).toBe('You can buy 3 of this drop and you have 4 already.');
    expect(limitText(1, 1)).toBe('You can buy one of this drop and you have it already.');
  });

  it('tells a buyer under the limit how many more they may buy', () => {
    expect(ownedText(3, 1)).toBe('You have one; you can buy 2 more.');
    expect(ownedText(3, 2)).toBe('You have 2; you can buy one more.');
    expect(ownedText(3, 0)).toBeNull();
    expect(ownedText(2, 2)).toBeNull();
  });
});

describe('the total', () => {
  it('multiplies the exact decimal price, never through floating point', () => {
    expect(totalPrice('199.99', 3)).toBe('599.97');
    expect(totalPrice('0.10', 3)).toBe('0.30');
    expect(totalPrice('0.1', 3)).toBe('0.30');
    expect(totalPrice('110.50', 2)).toBe('221.00');
    expect(totalPrice('230', 2)).toBe('460');
    expect(totalPrice('99999999.99', 100)).toBe('9999999999.00');
    expect(totalPrice('12.34', 1)).toBe('12.34');
  });

  it('leaves a price it cannot read as it is', () => {
    expect(totalPrice('abc', 2)).toBe('abc');
    expect(totalPrice('1.234', 2)).toBe('1.234');
  });

  it('names what a hold is of', () => {
    expect(holdLabel('M', 2)).toBe('M × 2');
    expect(holdLabel('M', 1)).toBe('M');
    expect(holdLabel(null, 3)).toBe('× 3');
    expect(holdLabel(null, 1)).toBe('');
  });
});
