// The admin forms' pure logic: reading sizes typed as text, turning an
// edit form into the smallest PATCH, and the drop's state in words. Unit
// tested; the server still validates everything.

import type { Drop, DropPatch, SaleMode } from './api';

/** A form value problem, with the field it belongs to. */
export interface FormProblem {
  field: string;
  message: string;
}

/**
 * Sizes typed as `S=10, M=12, L=5` (commas or new lines between sizes,
 * `=` or `:` before the stock). Empty text means no sizes (a one-variant
 * drop with a total stock).
 */
export function parseSizes(text: string): { variants: { name: string; totalStock: number }[] } | FormProblem {
  const parts = text
    .split(/[,\n]/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  const variants: { name: string; totalStock: number }[] = [];
  for (const part of parts) {
    const m = /^(.+?)\s*[=:]\s*(\d+)$/.exec(part);
    if (!m || !m[1] || !m[2]) return { field: 'variants', message: `Write each size as name=stock, e.g. M=10 (not “${part}”).` };
    const name = m[1].trim();
    if (variants.some((v) => v.name === name)) return { field: 'variants', message: `The size “${name}” is listed twice.` };
    variants.push({ name, totalStock: Number(m[2]) });
  }
  return { variants };
}

/** The longest beacon name the server takes, in characters (drop-core's `MAX_BEACON_NAME`). */
export const MAX_BEACON_NAME = 200;

/** The create form's sale-mode fields, as text (what the inputs hold), with the times they must fit. */
export interface SaleModeForm {
  mode: SaleMode;
  /** `datetime-local` value. */
  drawAt: string;
  beaconName: string;
  /** The form's start and end (`datetime-local`, '' for none): the draw falls between them. */
  startsAt: string;
  endsAt: string;
}

/** What the create body gets from the sale-mode fields. */
export interface SaleModeFields {
  mode?: SaleMode;
  drawAt?: string;
  beaconName?: string;
}

function localMs(local: string): number {
  return local ? new Date(local).getTime() : NaN;
}

/**
 * The sale-mode part of the create body, or the first field that is wrong,
 * checked as the server checks it (at `now`, epoch ms): a draw needs a draw
 * time in the future, after the start and before the end; the beacon name
 * is optional, 1 to 200 characters without control characters. A first-come
 * drop sends none of them (the server's default), whatever the hidden draw
 * fields still hold.
 */
export function saleModeFields(form: SaleModeForm, now: number): SaleModeFields | FormProblem {
  if (form.mode !== 'draw') return {};
  if (!form.drawAt.trim()) return { field: 'drawAt', message: 'Pick when the draw happens.' };
  const drawAt = localMs(form.drawAt);
  if (Number.isNaN(drawAt)) return { field: 'drawAt', message: 'Enter the draw time as a date and time.' };
  if (drawAt <= now) return { field: 'drawAt', message: 'The draw must be in the future.' };
  const startsAt = localMs(form.startsAt);
  if (!Number.isNaN(startsAt) && drawAt <= startsAt)
    return { field: 'drawAt', message: 'The draw must come after the start: entries are taken in between.' };
  const endsAt = localMs(form.endsAt);
  if (!Number.isNaN(endsAt) && drawAt >= endsAt) return { field: 'drawAt', message: 'The draw must come before the end.' };
  const fields: SaleModeFields = { mode: 'draw', drawAt: new Date(drawAt).toISOString() };
  const beacon = form.beaconName.trim();
  if (beacon) {
    // Counted in code points, as the server counts characters.
    if ([...beacon].length > MAX_BEACON_NAME)
      return { field: 'beaconName', message: `The beacon name is at most ${MAX_BEACON_NAME} characters.` };
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(beacon))
      return { field: 'beaconName', message: 'The beacon name cannot hold control characters (tabs, line breaks).' };
    fields.beaconName = beacon;
  }
  return fields;
}

/** `datetime-local` gives a wall-clock time in the browser's zone; the API wants an instant in UTC. */
export function toInstant(local: string): string | undefined {
  if (!local) return undefined;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? local : d.toISOString();
}

/** An instant as a `datetime-local` value in the browser's zone ('' for none). */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The edit form's fields, as text (what the inputs hold). */
export interface EditForm {
  name: string;
  price: string;
  startsAt: string;
  endsAt: string;
  maxPerBuyer: string;
  holdSeconds: string;
  /** Stock per variant id. */
  stock: Record<string, string>;
}

/** The edit form filled from the drop as it is. */
export function editFormFrom(drop: Drop): EditForm {
  const stock: Record<string, string> = {};
  for (const v of drop.variants ?? []) stock[v.id] = String(v.totalStock);
  return {
    name: drop.name,
    price: String(drop.price),
    startsAt: toLocalInput(drop.startsAt),
    endsAt: toLocalInput(drop.endsAt),
    maxPerBuyer: String(drop.maxPerBuyer ?? 1),
    holdSeconds: String(drop.holdSeconds),
    stock,
  };
}

/** Whether the drop has started at `now`: then its price is locked. */
export function hasStarted(drop: Pick<Drop, 'startsAt'>, now: number): boolean {
  if (!drop.startsAt) return true;
  const t = Date.parse(drop.startsAt);
  return Number.isNaN(t) || t <= now;
}

function wholeNumber(text: string, field: string, what: string): number | FormProblem {
  const t = text.trim();
  if (!/^\d+$/.test(t)) return { field, message: `${what} must be a whole number.` };
  return Number(t);
}

function isProblem(x: unknown): x is FormProblem {
  return typeof x === 'object' && x !== null && 'field' in x && 'message' in x;
}

/**
 * The PATCH body for what the form changed, and nothing else (an unchanged
 * field is left out, so an edit never resends a locked price). `{}` when
 * nothing changed. A value that is not even a number is reported here; the
 * rest (ranges, stock below what is held or sold) is the server's to say.
 */
export function patchFrom(drop: Drop, form: EditForm): DropPatch | FormProblem {
  const before = editFormFrom(drop);
  const patch: DropPatch = {};
  if (form.name.trim() !== before.name.trim()) patch.name = form.name.trim();
  if (form.price.trim() !== before.price.trim()) patch.price = form.price.trim();
  if (form.startsAt !== before.startsAt) patch.startsAt = toInstant(form.startsAt) ?? null;
  if (form.endsAt !== before.endsAt) patch.endsAt = toInstant(form.endsAt) ?? null;
  if (form.maxPerBuyer.trim() !== before.maxPerBuyer) {
    const n = wholeNumber(form.maxPerBuyer, 'maxPerBuyer', 'Max per buyer');
    if (isProblem(n)) return n;
    patch.maxPerBuyer = n;
  }
  if (form.holdSeconds.trim() !== before.holdSeconds) {
    const n = wholeNumber(form.holdSeconds, 'holdSeconds', 'Hold length');
    if (isProblem(n)) return n;
    patch.holdSeconds = n;
  }
  const variants = drop.variants ?? [];
  const changed: { id: string; totalStock: number }[] = [];
  for (const v of variants) {
    const text = form.stock[v.id] ?? String(v.totalStock);
    if (text.trim() === String(v.totalStock)) continue;
    const n = wholeNumber(text, `stock-${v.id}`, `Stock of ${v.name}`);
    if (isProblem(n)) return n;
    changed.push({ id: v.id, totalStock: n });
  }
  if (changed.length > 0) {
    // A one-variant drop is edited by its total, as it was created.
    if (variants.length === 1 && changed[0]) patch.totalStock = changed[0].totalStock;
    else patch.variants = changed;
  }
  return patch;
}

/** Whether `x` is a form problem rather than a patch (or other form result). */
export function isFormProblem<T extends object>(x: T | FormProblem): x is FormProblem {
  return isProblem(x);
}

/** A drop's state for the admin list, at `now`. */
export function adminState(drop: Drop, now: number): 'ended' | 'paused' | 'upcoming' | 'onSale' {
  if (drop.endsAt && Date.parse(drop.endsAt) <= now) return 'ended';
  if (drop.paused) return 'paused';
  if (drop.startsAt && Date.parse(drop.startsAt) > now) return 'upcoming';
  return 'onSale';
}

/**
 * The server's message without the field names it starts with, as a
 * sentence: "price: invalid price: must have at most 2 decimals" → "Must
 * have at most 2 decimals."
 */
export function cleanMessage(message: string, field: string): string {
  // The field may be named more than once ("price: invalid price: …").
  const escaped = field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const prefix = new RegExp(`^\\s*(invalid\\s+)?${escaped}\\s*:\\s*`, 'i');
  let rest = message.trim();
  while (prefix.test(rest)) rest = rest.replace(prefix, '').trim();
  if (!rest) return 'This value is not valid.';
  const sentence = rest.charAt(0).toUpperCase() + rest.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}
