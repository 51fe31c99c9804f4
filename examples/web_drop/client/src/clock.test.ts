import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { observeServerTime, resetServerClock, serverNow, serverOffset } from './clock';

describe('the server clock', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-01-01T00:00:00Z'));
    resetServerClock();
  });
  afterEach(() => vi.useRealTimers());

  const at = (ms: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + ms).toISOString();

  it('runs ahead of a slow browser clock by the largest recent offset', () => {
    observeServerTime(at(90_000));
    observeServerTime(at(120_000)); // the message that travelled fastest
    observeServerTime(at(100_000));
    expect(serverOffset()).toBe(120_000);
    expect(serverNow()).toBe(Date.now() + 120_000);
  });

  it('ignores stamps that are not times', () => {
    observeServerTime(at(5_000));
    observeServerTime('yesterday');
    observeServerTime(42);
    observeServerTime(undefined);
    expect(serverOffset()).toBe(5_000);
  });

  it('follows a stepped server clock once old samples leave the window', () => {
    observeServerTime(at(60_000));
    for (let i = 0; i < 20; i++) observeServerTime(at(-1_000));
    expect(serverOffset()).toBe(-1_000);
  });

  it('starts over after a reset', () => {
    observeServerTime(at(60_000));
    resetServerClock();
    observeServerTime(at(2_000));
    expect(serverOffset()).toBe(2_000);
  });
});
