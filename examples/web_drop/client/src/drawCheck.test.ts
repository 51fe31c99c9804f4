import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  canonicalEntryList,
  checkDraw,
  compareBytes,
  compareRanked,
  drawKey,
  findReceipt,
  parsePublishedDraw,
  rank,
  standingIn,
  toHex,
  type DrawCheck,
  type DrawFailure,
  type DrawOutcome,
  type PublishedDraw,
} from './drawCheck';
// A published draw of 200 entries and what a checker must recompute from it, both written by
// fixtures/draw200.py (`cd src/fixtures && python3 draw200.py`): the recipe of docs/draws.md in
// Python's hashlib and hmac, nothing shared with this module. The checker of docs/draws.md
// accepts draw200.json (`python3 check_draw.py draw200.json`), and drop-core's `verify_draw`
// recomputes the same winners and waiting lists from it.
import draw200Text from './fixtures/draw200.json?raw';
import expected200Text from './fixtures/draw200.expected.json?raw';

// The worked example of docs/draws.md, the values drop-core's `draw::tests::known_answer` checks.
const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';
const r = (digit: string): string => digit.repeat(32);
const SEED = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const SEED_HASH = '630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd';
const ENTRY_LIST_HASH = 'c9e73116fd2426550cde95c8460127b9d8385b2bd8013696039b02f752538a2c';
const BEACON = 'f668e344aefcaa61612e39e6c15e292b8ce3ab60dfb7c164cba3247545f3fee5';
const BEACON_KEY = '6e4dc3c3f6780d0b668d9caefd3881447f33df3d84c02649071f269b12eea56a';

/** A published draw's JSON, loosely typed so tests can break it. */
interface DrawJson {
  [field: string]: unknown;
  seed: string;
  seedHash: string;
  beacon?: unknown;
  entryListHash: string;
  entries: { receipt: string; variantId: string }[];
  stock: { variantId: string; stock: number }[];
  winners: { variantId: string; receipts: string[] }[];
}

/** The example as published, without a beacon (the JSON at the end of the worked example). */
function example(): DrawJson {
  return {
    seed: SEED,
    seedHash: SEED_HASH,
    entryListHash: ENTRY_LIST_HASH,
    entries: [
      { receipt: r('1'), variantId: A },
      { receipt: r('2'), variantId: B },
      { receipt: r('3'), variantId: A },
      { receipt: r('4'), variantId: A },
      { receipt: r('5'), variantId: B },
    ],
    stock: [
      { variantId: A, stock: 2 },
      { variantId: B, stock: 1 },
    ],
    winners: [
      { variantId: A, receipts: [r('4'), r('3')] },
      { variantId: B, receipts: [r('2')] },
    ],
  };
}

/** The same draw with the beacon: `…0b` then goes to 5555 (drop-core's `the_published_json_alone_verifies`). */
function withBeacon(): DrawJson {
  const d = example();
  d.beacon = BEACON;
  d.winners[1]!.receipts = [r('5')];
  return d;
}

function parsed(json: unknown): PublishedDraw {
  const p = parsePublishedDraw(json);
  if (!p.ok) throw new Error(p.message);
  return p.draw;
}

async function outcomeOf(json: unknown): Promise<DrawOutcome> {
  const check = await checkDraw(parsed(json));
  if (!check.ok) throw new Error(check.failure.message);
  return check.outcome;
}

async function failureOf(json: unknown): Promise<DrawFailure> {
  const check: DrawCheck = await checkDraw(parsed(json));
  if (check.ok) throw new Error('the draw checked out');
  return check.failure;
}

async function sha256Hex(hex: string): Promise<string> {
  const bytes = new Uint8Array(hex.length / 2).map((_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16));
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

describe('the worked example of docs/draws.md', () => {
  it('checks out without a beacon, with the documented hashes, winners and line', async () => {
    const outcome = await outcomeOf(example());
    expect(outcome.seedHash).toBe(SEED_HASH);
    expect(outcome.entryListHash).toBe(ENTRY_LIST_HASH);
    // Without a beacon the key is the seed itself.
    expect(outcome.key).toBe(SEED);
    expect(outcome.variants).toEqual([
      { variantId: A, stock: 2, winners: [r('4'), r('3')], waitlist: [r('1')] },
      { variantId: B, stock: 1, winners: [r('2')], waitlist: [r('5')] },
    ]);
  });

  it('writes the documented canonical list: five 70-byte lines sorted by receipt', () => {
    const shuffled = example();
    shuffled.entries.reverse();
    const list = canonicalEntryList(parsed(shuffled));
    expect(list).toBe(
      `${r('1')} ${A}\n${r('2')} ${B}\n${r('3')} ${A}\n${r('4')} ${A}\n${r('5')} ${B}\n`,
    );
    expect(list.length).toBe(350);
  });

  it('ranks each entry as the documented table says, without and with the beacon', async () => {
    const plain = [
      [r('4'), '36ef47a5d99cfaf5267429194cff16701f929296808056b0ad38267536b8af60'],
      [r('3'), '84d8044d7660c4f39aa9a7a0274b6df360bafc292f81123fad45846fdb5121d2'],
      [r('1'), 'b0ce7de3737593c89fa5220697876a3855511fff861a035072f75b085af4c33d'],
      [r('2'), '1f364951fbfa2a544d593e1e4ceeb4873baa77a05e2e12caa555adbc4b01c733'],
      [r('5'), 'c88d504f6fa5ee25237d227f327cdb8c70fa08a276fe3d6f20cb16f547c67f86'],
    ] as const;
    for (const [receipt, expected] of plain) expect(await rank(SEED, ENTRY_LIST_HASH, receipt)).toBe(expected);

    expect(await drawKey(parsed(withBeacon()))).toBe(BEACON_KEY);
    const mixed = [
      [r('4'), '64ee13d6d39e67e0752497fbad4b35421fae072013bb8ad18f4532d3abab0390'],
      [r('3'), '79c57bb98d00972359130d99d067a6f14885b12187164e3cb9d34d37f52021c4'],
      [r('1'), 'e66fc7f58a079d530acac87d29db2a9193c5de121b4bafd74f8a3ce287ac6aba'],
      [r('5'), '2dffacf978543efc47738d94ef582f10710fa8790ef38328524b837904dab69a'],
      [r('2'), '8b64267f3c33f692c39ff86e9db3eb0216885eca00a7b4631753b5630ab3649e'],
    ] as const;
    for (const [receipt, expected] of mixed) expect(await rank(BEACON_KEY, ENTRY_LIST_HASH, receipt)).toBe(expected);
  });

  it('checks out with the beacon: same hashes, the key sha256(seed ‖ beacon), and …0b to 5555', async () => {
    const outcome = await outcomeOf(withBeacon());
    expect(outcome.seedHash).toBe(SEED_HASH);
    expect(outcome.entryListHash).toBe(ENTRY_LIST_HASH);
    expect(outcome.key).toBe(BEACON_KEY);
    expect(outcome.variants).toEqual([
      { variantId: A, stock: 2, winners: [r('4'), r('3')], waitlist: [r('1')] },
      { variantId: B, stock: 1, winners: [r('5')], waitlist: [r('2')] },
    ]);
  });

  it('reads a null beacon as none, and fails the beacon draw when its beacon is left out', async () => {
    expect((await outcomeOf({ ...example(), beacon: null })).key).toBe(SEED);
    const stripped = withBeacon();
    delete stripped.beacon;
    expect(await failureOf(stripped)).toMatchObject({ check: 'winners', problem: 'differ', variantId: B });
  });

  it('accepts what drop-core accepts: capitals anywhere, entries in any order, unknown fields', async () => {
    const up = (s: string): string => s.toUpperCase();
    const d = withBeacon();
    const loud = {
      seed: up(SEED),
      seedHash: up(SEED_HASH),
      beacon: up(BEACON),
      entryListHash: up(ENTRY_LIST_HASH),
      entries: d.entries.map((e) => ({ receipt: up(e.receipt), variantId: up(e.variantId) })).reverse(),
      stock: d.stock.map((line) => ({ ...line, variantId: up(line.variantId) })),
      winners: d.winners.map((w) => ({ variantId: up(w.variantId), receipts: w.receipts.map(up) })),
      beaconRound: 1234,
    };
    const outcome = await outcomeOf(loud);
    expect(outcome.key).toBe(BEACON_KEY);
    expect(outcome.variants[1]).toEqual({ variantId: B, stock: 1, winners: [r('5')], waitlist: [r('2')] });
  });
});

describe('without WebCrypto', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('says why the draw cannot be checked (pages over plain http have no crypto.subtle)', async () => {
    const draw = parsed(example());
    vi.stubGlobal('crypto', {});
    await expect(checkDraw(draw)).rejects.toThrow(/no WebCrypto \(crypto\.subtle\).*https or from localhost/);
  });
});

describe('a tampered draw fails the right check', () => {
  it('a seed hash that is not sha256(seed)', async () => {
    const d = example();
    d.seedHash = await sha256Hex('09'.repeat(32));
    expect(await failureOf(d)).toMatchObject({ check: 'seedHash', published: d.seedHash, computed: SEED_HASH });
  });

  it('another seed: the seed hash first; with its hash replaced too, the winners of …0a', async () => {
    // drop-core's `verify_rejects_a_tampered_seed`: seed 01 01 … 01 makes 4444, 1111 the winners of …0a.
    const d = example();
    d.seed = '01'.repeat(32);
    const other = await sha256Hex(d.seed);
    expect(await failureOf(d)).toMatchObject({ check: 'seedHash', published: SEED_HASH, computed: other });
    d.seedHash = other;
    expect(await failureOf(d)).toEqual({
      check: 'winners',
      problem: 'differ',
      variantId: A,
      published: [r('4'), r('3')],
      computed: [r('4'), r('1')],
      message: `The published winners of variant ${A} are not the recomputed ones.`,
    });
  });

  it('an entry added, removed, or moved to another variant', async () => {
    const added = example();
    added.entries.push({ receipt: r('6'), variantId: A });
    const removed = example();
    removed.entries.splice(0, 1);
    const moved = example();
    moved.entries[0]!.variantId = B;
    for (const d of [added, removed, moved]) {
      const failure = await failureOf(d);
      if (failure.check !== 'entryListHash') throw new Error(failure.message);
      expect(failure.published).toBe(ENTRY_LIST_HASH);
      expect(failure.computed).toMatch(/^[0-9a-f]{64}$/);
      expect(failure.computed).not.toBe(ENTRY_LIST_HASH);
      expect(failure.message).toBe(
        `The entry list hashes to ${failure.computed}, not the published ${ENTRY_LIST_HASH}: an entry was added, removed or changed.`,
      );
    }
    // Moved, with the hash of the moved list published too: every rank changes, and the
    // published winners no longer follow.
    const movedFailure = await failureOf(moved);
    if (movedFailure.check !== 'entryListHash') throw new Error(movedFailure.message);
    moved.entryListHash = movedFailure.computed;
    expect(await failureOf(moved)).toMatchObject({ check: 'winners', problem: 'differ' });
  });

  it('winners swapped, replaced, claimed for an unknown variant, listed twice, or left out', async () => {
    const swapped = example();
    swapped.winners[0]!.receipts.reverse();
    expect(await failureOf(swapped)).toMatchObject({
      check: 'winners',
      problem: 'differ',
      variantId: A,
      published: [r('3'), r('4')],
      computed: [r('4'), r('3')],
    });

    const replaced = example();
    replaced.winners[1]!.receipts = [r('5')];
    expect(await failureOf(replaced)).toMatchObject({ check: 'winners', problem: 'differ', variantId: B, computed: [r('2')] });

    const extra = example();
    extra.winners.push({ variantId: C, receipts: [] });
    expect(await failureOf(extra)).toMatchObject({ check: 'winners', problem: 'noStockLine', variantId: C, computed: [] });

    const twice = example();
    twice.winners.push({ variantId: A, receipts: [r('4'), r('3')] });
    expect(await failureOf(twice)).toMatchObject({ check: 'winners', problem: 'repeated', variantId: A });

    // A variant left out of `winners` claims none, which is wrong when it has winners.
    const missing = example();
    missing.winners.pop();
    expect(await failureOf(missing)).toMatchObject({ check: 'winners', problem: 'differ', variantId: B, published: [], computed: [r('2')] });
  });

  it('a stock changed, and the winners that go with the new stock', async () => {
    const more = example();
    more.stock[1]!.stock = 2;
    expect(await failureOf(more)).toMatchObject({ check: 'winners', variantId: B, published: [r('2')], computed: [r('2'), r('5')] });
    more.winners[1]!.receipts = [r('2'), r('5')];
    expect((await outcomeOf(more)).variants[1]!.waitlist).toEqual([]);

    // Stock 0 for …0a: nobody wins it, all three wait in rank order; a left-out line claims that.
    const none = example();
    none.stock[0]!.stock = 0;
    none.winners.shift();
    expect((await outcomeOf(none)).variants[0]).toEqual({ variantId: A, stock: 0, winners: [], waitlist: [r('4'), r('3'), r('1')] });
  });

  it('a list that cannot be drawn from: a receipt twice, an entry without a stock line, a variant with two', async () => {
    const twice = example();
    twice.entries.push({ ...twice.entries[2]! });
    expect(await failureOf(twice)).toMatchObject({ check: 'malformed', problem: 'duplicateReceipt', receipt: r('3') });
    // The same receipt twice counts twice whatever its case, since drop-core reads both as one.
    const cased = example();
    cased.entries.push({ receipt: r('A'), variantId: A }, { receipt: r('a'), variantId: B });
    expect(await failureOf(cased)).toMatchObject({ check: 'malformed', problem: 'duplicateReceipt', receipt: r('a') });

    const stray = example();
    stray.entries.push({ receipt: r('6'), variantId: C });
    expect(await failureOf(stray)).toMatchObject({ check: 'malformed', problem: 'unknownVariant', variantId: C });

    const doubled = example();
    doubled.stock.push({ variantId: B, stock: 3 });
    expect(await failureOf(doubled)).toMatchObject({ check: 'malformed', problem: 'duplicateVariant', variantId: B });
  });

  it('fails the first check in drop-core’s order: seed hash, malformed, entry list hash, winners', async () => {
    const all = example();
    all.seedHash = '00'.repeat(32);
    all.entries.push({ ...all.entries[0]! });
    all.winners[0]!.receipts.reverse();
    expect((await failureOf(all)).check).toBe('seedHash');
    all.seedHash = SEED_HASH;
    expect((await failureOf(all)).check).toBe('malformed');
    all.entries.pop();
    all.entries.push({ receipt: r('6'), variantId: A });
    expect((await failureOf(all)).check).toBe('entryListHash');
    all.entries.pop();
    expect(await failureOf(all)).toMatchObject({ check: 'winners', variantId: A });

    // Within the malformed checks: two stock lines, then a receipt twice, then a stray entry.
    const messy = example();
    messy.entries.push({ receipt: r('6'), variantId: C }, { ...messy.entries[0]! });
    messy.stock.push({ ...messy.stock[0]! });
    expect(await failureOf(messy)).toMatchObject({ problem: 'duplicateVariant' });
    messy.stock.pop();
    expect(await failureOf(messy)).toMatchObject({ problem: 'duplicateReceipt' });
    messy.entries.pop();
    expect(await failureOf(messy)).toMatchObject({ problem: 'unknownVariant' });
  });
});

describe('parsePublishedDraw', () => {
  const refuse = (json: unknown): { path: string; message: string } => {
    const p = parsePublishedDraw(json);
    if (p.ok) throw new Error('parsed');
    return p;
  };
  const edit = (change: (d: DrawJson) => void): DrawJson => {
    const d = withBeacon();
    change(d);
    return d;
  };

  it('reads the JSON text as well as the parsed value, lowercasing hex and UUIDs', () => {
    const text = JSON.stringify(withBeacon()).replace(SEED, SEED.toUpperCase()).replace(A, A.toUpperCase());
    const draw = parsed(text);
    expect(draw.seed).toBe(SEED);
    expect(draw.beacon).toBe(BEACON);
    expect(draw.entries[0]).toEqual({ receipt: r('1'), variantId: A });
    expect(parsed(example()).beacon).toBeUndefined();
  });

  it('names the field that is wrong and says what it must be', () => {
    expect(refuse('{"seed":')).toMatchObject({ path: '' });
    expect(refuse('{"seed":').message).toMatch(/^The draw is not JSON: /);
    expect(refuse([])).toEqual({ ok: false, path: '', message: 'The draw must be a JSON object, not []' });
    expect(refuse(edit((d) => delete (d as Partial<DrawJson>).seed))).toEqual({ ok: false, path: 'seed', message: 'seed is missing' });
    expect(refuse(edit((d) => (d.seed = SEED.slice(2))))).toMatchObject({
      path: 'seed',
      message: `seed must be 64 hex digits (32 bytes), not "${SEED.slice(2)}"`,
    });
    // Fields are read in the order they are written: the seed before the entries.
    expect(refuse(edit((d) => ((d.seed = ''), (d.entries[0]!.receipt = ''))))).toMatchObject({ path: 'seed' });
    // A long wrong value is cut short in the message.
    expect(refuse(edit((d) => (d.seed = SEED.repeat(2)))).message).toBe(
      `seed must be 64 hex digits (32 bytes), not "${SEED.repeat(2).slice(0, 76)}…`,
    );
    expect(refuse(edit((d) => (d.seedHash = `${SEED_HASH.slice(1)}g`))).message).toMatch(/^seedHash must be 64 hex digits \(32 bytes\)/);
    expect(refuse(edit((d) => ((d as Record<string, unknown>).entryListHash = 42)))).toMatchObject({ path: 'entryListHash', message: 'entryListHash must be 64 hex digits (32 bytes), not 42' });
    expect(refuse(edit((d) => (d.entries[3]!.receipt = 'abc')))).toEqual({
      ok: false,
      path: 'entries[3].receipt',
      message: 'entries[3].receipt must be 32 hex digits (16 bytes), not "abc"',
    });
    expect(refuse(edit((d) => (d.entries[1]!.variantId = A.replaceAll('-', ''))))).toMatchObject({
      path: 'entries[1].variantId',
      message: expect.stringMatching(/^entries\[1\]\.variantId must be a UUID such as /),
    });
    expect(refuse(edit((d) => (d.entries[1]!.variantId = `{${A}}`))).path).toBe('entries[1].variantId');
    expect(refuse(edit((d) => (d.entries = {} as never)))).toMatchObject({ path: 'entries', message: 'entries must be a list, not {}' });
    expect(refuse(edit((d) => (d.entries[0] = 'x' as never))).path).toBe('entries[0]');
    expect(refuse(edit((d) => delete (d.winners[0] as Partial<(typeof d.winners)[0]>).receipts))).toMatchObject({
      path: 'winners[0].receipts',
      message: 'winners[0].receipts is missing',
    });
    expect(refuse(edit((d) => (d.winners[1]!.receipts = [' '.repeat(32)]))).path).toBe('winners[1].receipts[0]');
  });

  it('refuses a stock that is not a u32, and a beacon that is empty, odd or too long', () => {
    for (const stock of [-1, 1.5, '3', 2 ** 32, null]) {
      expect(refuse(edit((d) => (d.stock[1]!.stock = stock as number)))).toMatchObject({
        path: 'stock[1].stock',
        message: expect.stringMatching(/^stock\[1\]\.stock must be a whole number from 0 to 4294967295, not /),
      });
    }
    expect(parsed(edit((d) => (d.stock[1]!.stock = 2 ** 32 - 1))).stock[1]!.stock).toBe(4294967295);
    for (const beacon of ['', 'abc', 'zz', 'ab'.repeat(257), 7]) {
      expect(refuse(edit((d) => (d.beacon = beacon)))).toMatchObject({
        path: 'beacon',
        message: expect.stringMatching(/^beacon must be 2 to 512 hex digits \(1 to 256 bytes\)/),
      });
    }
    expect(parsed(edit((d) => (d.beacon = '0aFF'))).beacon).toBe('0aff');
    expect(parsed(edit((d) => (d.beacon = 'ab'.repeat(256)))).beacon).toHaveLength(512);
  });
});

describe('ordering', () => {
  it('compares ranks as unsigned bytes, big end first', () => {
    expect(compareBytes(Uint8Array.of(0x80), Uint8Array.of(0x7f))).toBeGreaterThan(0);
    expect(compareBytes(Uint8Array.of(0xff, 0x00), Uint8Array.of(0x00, 0xff))).toBeGreaterThan(0);
    expect(compareBytes(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3))).toBe(0);
  });

  it('breaks a tie of ranks by the smaller receipt', () => {
    const rank = Uint8Array.of(0xab, 0xcd);
    const sorted = [
      { rank, receipt: r('b') },
      { rank: Uint8Array.of(0xab, 0xce), receipt: r('0') },
      { rank, receipt: r('9') },
    ].sort(compareRanked);
    expect(sorted.map((e) => e.receipt)).toEqual([r('9'), r('b'), r('0')]);
  });
});

describe('findReceipt', () => {
  it('finds a winner with its place, someone in line with theirs, and says when a receipt is not listed', async () => {
    const draw = parsed(example());
    expect(await findReceipt(draw, r('4'))).toEqual({ status: 'won', receipt: r('4'), variantId: A, place: 1 });
    expect(await findReceipt(draw, r('3'))).toEqual({ status: 'won', receipt: r('3'), variantId: A, place: 2 });
    expect(await findReceipt(draw, r('1'))).toEqual({ status: 'waiting', receipt: r('1'), variantId: A, place: 1, of: 1 });
    expect(await findReceipt(draw, r('6'))).toEqual({ status: 'notListed', receipt: r('6') });
    // The beacon draw moves 2222 into line.
    expect(await findReceipt(parsed(withBeacon()), r('2'))).toEqual({ status: 'waiting', receipt: r('2'), variantId: B, place: 1, of: 1 });
  });

  it('takes a receipt as pasted, and says what a receipt looks like when it is not one', async () => {
    const draw = parsed(example());
    expect(await findReceipt(draw, `  ${r('5').toUpperCase()}\n`)).toMatchObject({ status: 'waiting', receipt: r('5'), variantId: B });
    expect(await findReceipt(draw, '4444')).toEqual({ status: 'invalid', message: 'A receipt is 32 hex digits (0–9, a–f).' });
  });

  it('looks receipts up in an outcome already checked, without hashing again', async () => {
    const outcome = await outcomeOf(withBeacon());
    expect(standingIn(outcome, r('5'))).toEqual({ status: 'won', receipt: r('5'), variantId: B, place: 1 });
    expect(standingIn(outcome, r('1'))).toEqual({ status: 'waiting', receipt: r('1'), variantId: A, place: 1, of: 1 });
    expect(standingIn(outcome, r('f'))).toEqual({ status: 'notListed', receipt: r('f') });
    expect(standingIn(outcome, 'not a receipt')).toMatchObject({ status: 'invalid' });
  });

  it('gives no place in a draw that does not check out, but still the variant the entry is listed for', async () => {
    const swapped = example();
    swapped.winners[0]!.receipts.reverse();
    expect(await findReceipt(parsed(swapped), r('1'))).toMatchObject({
      status: 'drawFailed',
      receipt: r('1'),
      variantId: A,
      failure: { check: 'winners', variantId: A },
    });
    // Not listed is said whatever else is wrong.
    expect(await findReceipt(parsed(swapped), r('7'))).toEqual({ status: 'notListed', receipt: r('7') });
  });
});

describe('a 200-entry draw made by the Python recipe', () => {
  interface Expected {
    key: string;
    seedHash: string;
    entryListHash: string;
    ranks: Record<string, string>;
    variants: { variantId: string; winners: string[]; waitlist: string[] }[];
  }
  const expected = JSON.parse(expected200Text) as Expected;

  it('checks out, with Python’s hashes, key and every variant’s whole order', async () => {
    const draw = parsed(draw200Text);
    expect(draw.entries).toHaveLength(200);
    const outcome = await outcomeOf(draw200Text);
    expect(outcome.seedHash).toBe(expected.seedHash);
    expect(outcome.entryListHash).toBe(expected.entryListHash);
    expect(outcome.key).toBe(expected.key);
    expect(outcome.variants.map(({ variantId, winners, waitlist }) => ({ variantId, winners, waitlist }))).toEqual(expected.variants);
    // The shapes the fixture promises: more entries than stock, stock 0, fewer than stock, none.
    expect(outcome.variants.map((v) => [v.stock, v.winners.length, v.waitlist.length])).toEqual([
      [25, 25, 95],
      [10, 10, 40],
      [0, 0, 10],
      [40, 20, 0],
      [5, 0, 0],
    ]);
  });

  it('ranks every entry as Python’s hmac does, about half of them with the top bit set', async () => {
    let high = 0;
    for (const [receipt, expectedRank] of Object.entries(expected.ranks)) {
      expect(await rank(expected.key, expected.entryListHash, receipt)).toBe(expectedRank);
      if (parseInt(expectedRank.slice(0, 2), 16) >= 0x80) high += 1;
    }
    // Ranks at or above 0x80… are where a signed comparison would go wrong.
    expect(high).toBeGreaterThan(50);
    expect(high).toBeLessThan(150);
  });

  it('finds receipts in it, and fails when one bit of the seed or one entry changes', async () => {
    const inLine = expected.variants[1]!.waitlist[2]!;
    expect(await findReceipt(parsed(draw200Text), inLine)).toMatchObject({ status: 'waiting', place: 3, of: 40 });
    const d = JSON.parse(draw200Text) as DrawJson;
    d.entries[100]!.variantId = expected.variants[0]!.variantId === d.entries[100]!.variantId ? expected.variants[1]!.variantId : expected.variants[0]!.variantId;
    expect((await failureOf(d)).check).toBe('entryListHash');
    const s = JSON.parse(draw200Text) as DrawJson;
    s.seed = `${s.seed.slice(0, 63)}${(parseInt(s.seed.slice(63), 16) ^ 1).toString(16)}`;
    expect((await failureOf(s)).check).toBe('seedHash');
  });
});

describe('a draw of 100,000 entries', () => {
  it('checks in a few seconds, batch by batch, ranking every entry once', { timeout: 60_000 }, async () => {
    const variants = [A, B, C, '00000000-0000-4000-8000-00000000000d'];
    const random = new Uint8Array(100_000 * 16);
    // getRandomValues fills at most 65,536 bytes a call.
    for (let at = 0; at < random.length; at += 65_536) crypto.getRandomValues(random.subarray(at, at + 65_536));
    const entries = Array.from({ length: 100_000 }, (_, i) => ({
      receipt: toHex(random.subarray(16 * i, 16 * i + 16)),
      variantId: variants[i % 4]!,
    }));
    const seed = toHex(crypto.getRandomValues(new Uint8Array(32)));
    const d: DrawJson = {
      seed,
      seedHash: await sha256Hex(seed),
      entryListHash: '00'.repeat(32),
      entries,
      // Stock 0: every entry waits, so the outcome shows each variant's whole order.
      stock: variants.map((variantId) => ({ variantId, stock: 0 })),
      winners: [],
    };
    // The entry list hash fails first (before any HMAC), and says what it is.
    const hashFailure = await failureOf(d);
    if (hashFailure.check !== 'entryListHash') throw new Error(hashFailure.message);
    d.entryListHash = hashFailure.computed;

    const progress: number[] = [];
    const started = performance.now();
    const check = await checkDraw(parsed(d), { onProgress: (done) => progress.push(done) });
    const ms = performance.now() - started;
    if (!check.ok) throw new Error(check.failure.message);
    expect(progress.length).toBeGreaterThan(10);
    expect(progress.at(-1)).toBe(100_000);
    const orders = check.outcome.variants.map((v) => v.waitlist);
    expect(orders.map((o) => o.length)).toEqual([25_000, 25_000, 25_000, 25_000]);
    expect(new Set(orders.flat()).size).toBe(100_000);
    // Generous, for slow CI machines (it takes about 2 s on a laptop): a check that took
    // minutes would be no use on a page.
    expect(ms).toBeLessThan(20_000);
  });
});
