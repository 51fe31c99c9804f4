// The server's clock as seen from this page. Countdowns run on it, so a
// browser whose clock is off by minutes still shows the true time left.
//
// Each WebSocket message carries `serverTime`; `serverTime - receivedAt`
// underestimates the offset by the message's travel time, so the largest
// recent sample is the closest to the truth. A bounded window lets the
// estimate follow the server if its clock is stepped.

const WINDOW = 20;
let samples: number[] = [];
let offset = 0;

/** Feeds one `serverTime` stamp (RFC 3339) received just now. */
export function observeServerTime(iso: unknown): void {
  if (typeof iso !== 'string') return;
  const server = Date.parse(iso);
  if (Number.isNaN(server)) return;
  samples.push(server - Date.now());
  if (samples.length > WINDOW) samples = samples.slice(-WINDOW);
  offset = Math.max(...samples);
}

/** Forgets old samples (after a reconnect the path may differ). */
export function resetServerClock(): void {
  samples = [];
}

/** Milliseconds since the epoch on the server's clock. */
export function serverNow(): number {
  return Date.now() + offset;
}

/** The current estimate of server minus browser clock, in milliseconds. */
export function serverOffset(): number {
  return offset;
}
