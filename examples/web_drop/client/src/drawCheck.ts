// Checks a published draw with nothing but its JSON and the browser's WebCrypto: the recipe of
// docs/draws.md step by step, giving the verdicts of drop-core's `verify_draw` (the same checks,
// failing in the same order), plus the waiting-list order the published draw leaves out.
//
// WebCrypto exists only in secure contexts (https, or localhost): elsewhere `crypto.subtle` is
// undefined and the check rejects with a message saying so, rather than falling back to a
// hand-written SHA-256 nobody has reviewed.

/** Bytes in one line of the canonical entry list: 32 hex + space + 36 (UUID) + newline. */
const LINE = 70;
/** Longest beacon drop-core accepts, in bytes (a drand round's randomness is 32). */
const MAX_BEACON = 256;
/** A stock is a `u32` in drop-core. */
const MAX_STOCK = 0xffff_ffff;
/**
 * HMACs started at once. WebCrypto is asynchronous per call, so the ranks are asked for in
 * batches: enough in flight to keep the crypto threads busy, few enough that 100,000 entries do
 * not hold 100,000 pending promises and buffers at once, and the page can show progress between.
 */
const BATCH = 2048;

const HEX_DIGITS = '0123456789abcdef';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^(?:[0-9a-f]{2})*$/i;

/** One published entry: a receipt (32 lowercase hex) and the variant entered for (lowercase UUID). */
export interface DrawEntry {
  readonly receipt: string;
  readonly variantId: string;
}

/** How many units of a variant the draw gave away. */
export interface DrawStock {
  readonly variantId: string;
  readonly stock: number;
}

/** A variant's winners as published, best rank first. */
export interface DrawWinners {
  readonly variantId: string;
  readonly receipts: readonly string[];
}

// Marks a draw the parse step made: a symbol, so no JSON can carry it.
const parsedDraw = Symbol('parsedDraw');

/**
 * A published draw as {@link parsePublishedDraw} reads it: every field present and well formed,
 * hex and UUIDs lowercase (so the canonical list is the one the store hashed, whatever case the
 * JSON used). Only the parse step makes one, hence the mark: a hand-built object with an
 * uppercase receipt would hash to another list and fail a draw that is fine.
 */
export interface PublishedDraw {
  readonly seed: string;
  readonly seedHash: string;
  /** Left out (or null) in the JSON when the drop named no beacon. */
  readonly beacon?: string;
  readonly entryListHash: string;
  readonly entries: readonly DrawEntry[];
  readonly stock: readonly DrawStock[];
  readonly winners: readonly DrawWinners[];
  readonly [parsedDraw]: true;
}

/** The parse step's answer: the draw, or the first field that is wrong and why. */
export type ParsedDraw =
  | { readonly ok: true; readonly draw: PublishedDraw }
  | {
      readonly ok: false;
      /** Where, as a JSON path: `entries[3].receipt`; empty for the document itself. */
      readonly path: string;
      /** What is wrong, in plain words: `entries[3].receipt must be 32 hex digits (16 bytes), not "abc"`. */
      readonly message: string;
    };

class Malformed extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(path ? `${path} ${problem}` : problem);
  }
}

/** The value in a message: short, and quoted when it is a string. */
function shown(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Malformed(path, `must be a JSON object, not ${shown(value)}`);
  }
  return value as Record<string, unknown>;
}

function array(value: unknown, path: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new Malformed(path, `must be a list, not ${shown(value)}`);
  return value;
}

function field(from: Record<string, unknown>, name: string, path: string): unknown {
  const value = from[name];
  if (value === undefined) throw new Malformed(path ? `${path}.${name}` : name, 'is missing');
  return value;
}

/**
 * Exactly `bytes` bytes of hex, either case (as drop-core reads it), lowercased. Nothing around
 * the digits, not even spaces: a store writes none, and a checker should not guess.
 */
function hexField(value: unknown, path: string, bytes: number): string {
  if (typeof value !== 'string' || value.length !== 2 * bytes || !HEX.test(value)) {
    throw new Malformed(path, `must be ${2 * bytes} hex digits (${bytes} bytes), not ${shown(value)}`);
  }
  return value.toLowerCase();
}

function uuidField(value: unknown, path: string): string {
  if (typeof value !== 'string' || !UUID.test(value)) {
    throw new Malformed(path, `must be a UUID such as 00000000-0000-4000-8000-00000000000a, not ${shown(value)}`);
  }
  return value.toLowerCase();
}

// Fields are read in the order drop-core writes them, so the first wrong one is the first a
// reader of the JSON would meet.
function readDraw(json: unknown): PublishedDraw {
  const doc = object(json, '');
  const seed = hexField(field(doc, 'seed', ''), 'seed', 32);
  const seedHash = hexField(field(doc, 'seedHash', ''), 'seedHash', 32);
  const beaconValue = doc.beacon;
  let beacon: string | undefined;
  if (beaconValue !== undefined && beaconValue !== null) {
    // Never empty: sha256(seed ‖ nothing) is the seed hash, public since entries opened.
    if (
      typeof beaconValue !== 'string' ||
      beaconValue.length < 2 ||
      beaconValue.length > 2 * MAX_BEACON ||
      !HEX.test(beaconValue)
    ) {
      throw new Malformed('beacon', `must be 2 to ${2 * MAX_BEACON} hex digits (1 to ${MAX_BEACON} bytes), not ${shown(beaconValue)}`);
    }
    beacon = beaconValue.toLowerCase();
  }
  const entryListHash = hexField(field(doc, 'entryListHash', ''), 'entryListHash', 32);
  const entries = array(field(doc, 'entries', ''), 'entries').map((value, i): DrawEntry => {
    const path = `entries[${i}]`;
    const entry = object(value, path);
    return {
      receipt: hexField(field(entry, 'receipt', path), `${path}.receipt`, 16),
      variantId: uuidField(field(entry, 'variantId', path), `${path}.variantId`),
    };
  });
  const stock = array(field(doc, 'stock', ''), 'stock').map((value, i): DrawStock => {
    const path = `stock[${i}]`;
    const line = object(value, path);
    const units = field(line, 'stock', path);
    if (typeof units !== 'number' || !Number.isInteger(units) || units < 0 || units > MAX_STOCK) {
      throw new Malformed(`${path}.stock`, `must be a whole number from 0 to ${MAX_STOCK}, not ${shown(units)}`);
    }
    return { variantId: uuidField(field(line, 'variantId', path), `${path}.variantId`), stock: units };
  });
  const winners = array(field(doc, 'winners', ''), 'winners').map((value, i): DrawWinners => {
    const path = `winners[${i}]`;
    const line = object(value, path);
    return {
      variantId: uuidField(field(line, 'variantId', path), `${path}.variantId`),
      receipts: array(field(line, 'receipts', path), `${path}.receipts`).map((r, j) =>
        hexField(r, `${path}.receipts[${j}]`, 16),
      ),
    };
  });
  return {
    seed,
    seedHash,
    ...(beacon === undefined ? {} : { beacon }),
    entryListHash,
    entries,
    stock,
    winners,
    [parsedDraw]: true as const,
  };
}

/**
 * Reads a published draw: the JSON text, or the value `JSON.parse` gave. Checks the shape and
 * every hex string and UUID (either case, as drop-core accepts; lowercased here), and names the
 * first field that is wrong. Fields it does not know are ignored, as drop-core ignores them.
 *
 * What needs the whole list to see (a receipt twice, an entry for a variant without stock) is
 * left to {@link checkDraw}, which reports it where `verify_draw` does: after the seed check.
 */
export function parsePublishedDraw(json: unknown): ParsedDraw {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (e) {
      return { ok: false, path: '', message: `The draw is not JSON: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  try {
    return { ok: true, draw: readDraw(value) };
  } catch (e) {
    if (e instanceof Malformed) {
      return { ok: false, path: e.path, message: e.path ? e.message : `The draw ${e.message}` };
    }
    throw e;
  }
}

// Bytes and hex.

type Bytes = Uint8Array<ArrayBuffer>;

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX_DIGITS[b >> 4]! + HEX_DIGITS[b & 0x0f]!;
  return out;
}

/** A hex digit's value, or -1 (by character code, so decoding is a table look-up per digit). */
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  DIGIT[HEX_DIGITS.charCodeAt(i)] = i;
  DIGIT[HEX_DIGITS.toUpperCase().charCodeAt(i)] = i;
}

/** The bytes of well-formed hex; anything else throws (callers pass parsed fields only). */
function fromHex(hex: string): Bytes {
  if (hex.length % 2 !== 0) throw new TypeError(`not hex: ${shown(hex)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const high = DIGIT[hex.charCodeAt(2 * i)] ?? -1;
    const low = DIGIT[hex.charCodeAt(2 * i + 1)] ?? -1;
    if (high < 0 || low < 0) throw new TypeError(`not hex: ${shown(hex)}`);
    out[i] = (high << 4) | low;
  }
  return out;
}

/**
 * Compares two byte strings as unsigned big-endian numbers (for equal lengths, the order of
 * their bytes): how the recipe orders ranks. Bytes are 0 to 255 here, never signed, so 0x80
 * sorts after 0x7f.
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/**
 * The recipe's order within a variant: smaller rank first, the smaller receipt first when two
 * ranks are equal (which would take a SHA-256 collision, but the order must still be total).
 * Receipts are lowercase hex of equal length, so string order is their byte order.
 */
export function compareRanked(
  a: { readonly rank: Uint8Array; readonly receipt: string },
  b: { readonly rank: Uint8Array; readonly receipt: string },
): number {
  return compareBytes(a.rank, b.rank) || compareStrings(a.receipt, b.receipt);
}

// Plain code-unit order, not localeCompare: hex digits must order as ASCII does.
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) {
    throw new Error('The draw cannot be checked here: this page has no WebCrypto (crypto.subtle), which browsers give only to pages served over https or from localhost.');
  }
  return s;
}

async function sha256(bytes: Bytes): Promise<Bytes> {
  return new Uint8Array(await subtle().digest('SHA-256', bytes));
}

function hmacKey(key: Bytes): Promise<CryptoKey> {
  return subtle().importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

/** `HMAC-SHA256(key, entryListHash ‖ receipt)`: 48 bytes of message, the hash's raw bytes then the receipt's. */
async function rankWith(key: CryptoKey, entryListHash: Bytes, receipt: string): Promise<Bytes> {
  const message = new Uint8Array(48);
  message.set(entryListHash, 0);
  message.set(fromHex(receipt), 32);
  return new Uint8Array(await subtle().sign('HMAC', key, message));
}

// The recipe's steps, each on its own so a page (or a test) can show one value.

/** The entries sorted by receipt (a copy). */
function byReceipt(entries: readonly DrawEntry[]): DrawEntry[] {
  return [...entries].sort((a, b) => compareStrings(a.receipt, b.receipt));
}

/** Step 2's bytes: one 70-byte line `<receipt> <variant uuid>\n` per entry, sorted by receipt. */
function canonicalBytes(sorted: readonly DrawEntry[]): Bytes {
  const out = new Uint8Array(sorted.length * LINE);
  sorted.forEach((e, i) => {
    const at = i * LINE;
    // Parsed fields are ASCII, so each UTF-16 unit is one byte.
    for (let j = 0; j < 32; j++) out[at + j] = e.receipt.charCodeAt(j);
    out[at + 32] = 0x20;
    for (let j = 0; j < 36; j++) out[at + 33 + j] = e.variantId.charCodeAt(j);
    out[at + 69] = 0x0a;
  });
  return out;
}

/**
 * The canonical entry list (step 2) as text: what `entryListHash` is the sha256 of, for a page
 * to offer as a file anyone can hash with `sha256sum`. A receipt listed twice stays twice here;
 * {@link checkDraw} refuses such a list.
 */
export function canonicalEntryList(draw: PublishedDraw): string {
  return byReceipt(draw.entries)
    .map((e) => `${e.receipt} ${e.variantId}\n`)
    .join('');
}

/** Step 3, as hex: `sha256(seed ‖ beacon)` with a beacon, the seed itself without one. */
export async function drawKey(draw: PublishedDraw): Promise<string> {
  return toHex(await keyBytes(draw));
}

async function keyBytes(draw: PublishedDraw): Promise<Bytes> {
  const seed = fromHex(draw.seed);
  if (draw.beacon === undefined) return seed;
  const beacon = fromHex(draw.beacon);
  const both = new Uint8Array(seed.length + beacon.length);
  both.set(seed, 0);
  both.set(beacon, seed.length);
  return sha256(both);
}

/**
 * Step 4 for one receipt, as hex: `HMAC-SHA256(key, entryListHash ‖ receipt)`, all three given
 * as hex (either case). For showing a buyer their own rank; throws on malformed hex.
 */
export async function rank(keyHex: string, entryListHashHex: string, receiptHex: string): Promise<string> {
  const key = fromHex(keyHex.toLowerCase());
  const hash = fromHex(entryListHashHex.toLowerCase());
  if (key.length !== 32 || hash.length !== 32 || receiptHex.length !== 32) {
    throw new TypeError('rank takes a 32-byte key, a 32-byte entry list hash and a 16-byte receipt');
  }
  return toHex(await rankWith(await hmacKey(key), hash, receiptHex.toLowerCase()));
}

// The check.

/** One variant's recomputed outcome. */
export interface VariantOutcome {
  readonly variantId: string;
  readonly stock: number;
  /** The first `stock` entries by rank, best first (all of them when fewer entered). */
  readonly winners: readonly string[];
  /** The rest, in rank order: the waiting-list order. */
  readonly waitlist: readonly string[];
}

/** A draw that checks out, as recomputed. */
export interface DrawOutcome {
  /** `sha256(seed)`, equal to the published seed hash. */
  readonly seedHash: string;
  /** sha256 of the canonical entry list, equal to the published one. */
  readonly entryListHash: string;
  /** The key that ranked the entries (step 3); public once the seed is. */
  readonly key: string;
  /** Every variant with a stock line, in the published stock order. */
  readonly variants: readonly VariantOutcome[];
}

/**
 * The first check a draw fails, in `verify_draw`'s order: the seed hash; the list being
 * drawable at all (`malformed`: a variant with two stock lines, then a receipt twice, then an
 * entry whose variant has no stock line); the entry list hash; the winners of a variant (first
 * a published winners line naming an unknown or repeated variant, then the first variant in
 * stock order whose winners differ). Each carries what was published and what was computed.
 */
export type DrawFailure = { readonly message: string } & (
  | { readonly check: 'seedHash'; readonly published: string; readonly computed: string }
  | { readonly check: 'malformed'; readonly problem: 'duplicateVariant' | 'unknownVariant'; readonly variantId: string }
  | { readonly check: 'malformed'; readonly problem: 'duplicateReceipt'; readonly receipt: string }
  | { readonly check: 'entryListHash'; readonly published: string; readonly computed: string }
  | {
      readonly check: 'winners';
      /**
       * `differ`: not the recomputed winners; `noStockLine`: the variant has no stock line, so no
       * winners (computed is empty); `repeated`: the variant has two winners lines.
       */
      readonly problem: 'differ' | 'noStockLine' | 'repeated';
      readonly variantId: string;
      readonly published: readonly string[];
      readonly computed: readonly string[];
    }
);

/** The answer of {@link checkDraw}. */
export type DrawCheck =
  | { readonly ok: true; readonly outcome: DrawOutcome }
  | { readonly ok: false; readonly failure: DrawFailure };

/** Options of {@link checkDraw}. */
export interface CheckOptions {
  /** Called after each batch of ranks (`done` of `total` entries), for a progress bar on long lists. */
  readonly onProgress?: (done: number, total: number) => void;
}

function failed(failure: DrawFailure): DrawCheck {
  return { ok: false, failure };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * Redoes a published draw (docs/draws.md, steps 1 to 6) and compares it with what was published.
 * On success, the recomputed outcome, waiting lists included; otherwise the first check that
 * failed. One HMAC per entry, in batches: 100,000 entries take a second or two.
 */
export async function checkDraw(draw: PublishedDraw, options: CheckOptions = {}): Promise<DrawCheck> {
  // 1. The seed is the one committed to when entries opened.
  const seedHash = toHex(await sha256(fromHex(draw.seed)));
  if (seedHash !== draw.seedHash) {
    return failed({
      check: 'seedHash',
      published: draw.seedHash,
      computed: seedHash,
      message: `sha256(seed) is ${seedHash}, not the published seed hash ${draw.seedHash}: the seed is not the one committed to when entries opened.`,
    });
  }

  // The list can be drawn from: one stock line per variant, each receipt once, every entry for
  // a variant with a stock line (checked in this order, as drop-core's `draw` does).
  const index = new Map<string, number>();
  for (const [i, line] of draw.stock.entries()) {
    if (index.has(line.variantId)) {
      return failed({
        check: 'malformed',
        problem: 'duplicateVariant',
        variantId: line.variantId,
        message: `The published draw is malformed: variant ${line.variantId} has two stock lines.`,
      });
    }
    index.set(line.variantId, i);
  }
  const sorted = byReceipt(draw.entries);
  for (let i = 1; i < sorted.length; i++) {
    const receipt = sorted[i]!.receipt;
    if (receipt === sorted[i - 1]!.receipt) {
      return failed({
        check: 'malformed',
        problem: 'duplicateReceipt',
        receipt,
        message: `The published draw is malformed: receipt ${receipt} appears twice in the entry list.`,
      });
    }
  }
  const stray = sorted.find((e) => !index.has(e.variantId));
  if (stray) {
    return failed({
      check: 'malformed',
      problem: 'unknownVariant',
      variantId: stray.variantId,
      message: `The published draw is malformed: an entry is for variant ${stray.variantId}, which has no stock line.`,
    });
  }

  // 2. The entry list is the one drawn from.
  const listHash = await sha256(canonicalBytes(sorted));
  const entryListHash = toHex(listHash);
  if (entryListHash !== draw.entryListHash) {
    return failed({
      check: 'entryListHash',
      published: draw.entryListHash,
      computed: entryListHash,
      message: `The entry list hashes to ${entryListHash}, not the published ${draw.entryListHash}: an entry was added, removed or changed.`,
    });
  }

  // 3 and 4. The key, then every entry's rank.
  const key = await keyBytes(draw);
  const hmac = await hmacKey(key);
  const ranked: { receipt: string; rank: Bytes }[][] = draw.stock.map(() => []);
  for (let start = 0; start < sorted.length; start += BATCH) {
    const batch = sorted.slice(start, start + BATCH);
    const ranks = await Promise.all(batch.map((e) => rankWith(hmac, listHash, e.receipt)));
    batch.forEach((e, i) => ranked[index.get(e.variantId)!]!.push({ receipt: e.receipt, rank: ranks[i]! }));
    options.onProgress?.(start + batch.length, sorted.length);
  }

  // 5 and 6. Each variant by rank; the first `stock` win, the rest wait in that order.
  const variants = draw.stock.map((line, i): VariantOutcome => {
    const order = ranked[i]!.sort(compareRanked).map((r) => r.receipt);
    return { variantId: line.variantId, stock: line.stock, winners: order.slice(0, line.stock), waitlist: order.slice(line.stock) };
  });

  // The published winners are exactly these. A variant left out of `winners` claims none.
  const claimed = new Map<string, readonly string[]>();
  for (const line of draw.winners) {
    const i = index.get(line.variantId);
    const repeated = claimed.has(line.variantId);
    if (i === undefined || repeated) {
      return failed({
        check: 'winners',
        problem: repeated ? 'repeated' : 'noStockLine',
        variantId: line.variantId,
        published: line.receipts,
        computed: i === undefined ? [] : variants[i]!.winners,
        message: repeated
          ? `The published winners list variant ${line.variantId} twice.`
          : `The published winners name variant ${line.variantId}, which has no stock line.`,
      });
    }
    claimed.set(line.variantId, line.receipts);
  }
  for (const v of variants) {
    const published = claimed.get(v.variantId) ?? [];
    if (!sameList(published, v.winners)) {
      return failed({
        check: 'winners',
        problem: 'differ',
        variantId: v.variantId,
        published,
        computed: v.winners,
        message: `The published winners of variant ${v.variantId} are not the recomputed ones.`,
      });
    }
  }
  return { ok: true, outcome: { seedHash, entryListHash, key: toHex(key), variants } };
}

// A buyer's own receipt.

/** Where one receipt stands. Places count from 1. */
export type ReceiptStanding =
  /** What was typed is not a receipt (32 hex digits). */
  | { readonly status: 'invalid'; readonly message: string }
  /** The published entry list does not hold it. */
  | { readonly status: 'notListed'; readonly receipt: string }
  /** Among the variant's winners, at this place in rank order. */
  | { readonly status: 'won'; readonly receipt: string; readonly variantId: string; readonly place: number }
  /** On the variant's waiting list, at this place of `of`. */
  | { readonly status: 'waiting'; readonly receipt: string; readonly variantId: string; readonly place: number; readonly of: number }
  /** Listed (for this variant), but the draw does not check out, so no place means anything. */
  | { readonly status: 'drawFailed'; readonly receipt: string; readonly variantId: string; readonly failure: DrawFailure };

/** A receipt as a buyer might paste it (spaces around, capitals), or why it is not one. */
function receiptInput(receipt: string): { receipt: string } | { message: string } {
  const r = receipt.trim().toLowerCase();
  return /^[0-9a-f]{32}$/.test(r) ? { receipt: r } : { message: 'A receipt is 32 hex digits (0–9, a–f).' };
}

/**
 * Where `receipt` stands in an outcome {@link checkDraw} already computed: won, its place in
 * line, or not in the list. For a page that has checked the draw once and looks up receipts.
 */
export function standingIn(outcome: DrawOutcome, receipt: string): ReceiptStanding {
  const input = receiptInput(receipt);
  if ('message' in input) return { status: 'invalid', message: input.message };
  const r = input.receipt;
  for (const v of outcome.variants) {
    const won = v.winners.indexOf(r);
    if (won >= 0) return { status: 'won', receipt: r, variantId: v.variantId, place: won + 1 };
    const waiting = v.waitlist.indexOf(r);
    if (waiting >= 0) return { status: 'waiting', receipt: r, variantId: v.variantId, place: waiting + 1, of: v.waitlist.length };
  }
  return { status: 'notListed', receipt: r };
}

/**
 * Where a buyer's receipt stands in a published draw: not in the list (said at once, whatever
 * else the draw holds: an entry left out is the news), or, after checking the whole draw, won or
 * its place in line; when the draw fails its check, the variant it is listed for and the failure.
 */
export async function findReceipt(draw: PublishedDraw, receipt: string, options: CheckOptions = {}): Promise<ReceiptStanding> {
  const input = receiptInput(receipt);
  if ('message' in input) return { status: 'invalid', message: input.message };
  const entry = draw.entries.find((e) => e.receipt === input.receipt);
  if (!entry) return { status: 'notListed', receipt: input.receipt };
  const check = await checkDraw(draw, options);
  if (!check.ok) return { status: 'drawFailed', receipt: input.receipt, variantId: entry.variantId, failure: check.failure };
  return standingIn(check.outcome, input.receipt);
}
