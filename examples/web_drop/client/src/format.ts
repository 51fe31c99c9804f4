// Display formatting for money, durations, times and buyers' names.

import type { PublicName } from './api';

/** `"199.99"` → `"$199.99"`; the decimal string is shown exactly as sent. */
export function formatPrice(price: string | number): string {
  return `$${String(price)}`;
}

/** Milliseconds left → `m:ss` (or `h:mm:ss` for long waits). */
export function formatCountdown(ms: number): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** How long ago `iso` was, relative to `now`, in a short phrase. */
export function timeAgo(iso: string, now: number): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const s = Math.max(0, Math.floor((now - then) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** An instant in epoch milliseconds (browser clock) as a local time of day with seconds. */
export function formatTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A start time as a short local date and time. */
export function formatWhen(iso: string): string {
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** What a buyer is called when the server hides names. */
export const HIDDEN_NAME = 'Someone';

/**
 * The name to show for a buyer in public lists: `displayName`, else its
 * deprecated alias `username` (older servers), else "Someone" (names hidden).
 */
export function buyerName(p: PublicName): string {
  for (const n of [p.displayName, p.username]) if (typeof n === 'string' && n.trim() !== '') return n;
  return HIDDEN_NAME;
}
