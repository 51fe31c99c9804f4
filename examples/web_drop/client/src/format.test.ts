import { describe, expect, it } from 'vitest';
import { buyerName } from './format';

describe('buyerName', () => {
  it('prefers displayName, then the deprecated username, then "Someone"', () => {
    expect(buyerName({ displayName: 'A.', username: 'A.' })).toBe('A.');
    expect(buyerName({ displayName: 'alice', username: 'old' })).toBe('alice');
    expect(buyerName({ username: 'bob' })).toBe('bob');
    expect(buyerName({ displayName: null, username: null })).toBe('Someone');
    expect(buyerName({ displayName: '  ' })).toBe('Someone');
    expect(buyerName({})).toBe('Someone');
  });
});
