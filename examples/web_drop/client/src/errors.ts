// Every error code the API (or the network) can produce, in plain words.

const PLAIN: Record<string, string> = {
  OUT_OF_STOCK: 'Sold out: every unit is reserved or sold. Units come back when holds run out, so keep watching.',
  DROP_NOT_FOUND: 'That drop no longer exists.',
  DROP_NOT_ACTIVE: 'That drop is not on sale right now.',
  RESERVATION_NOT_FOUND:
    'That hold could not be found. It may have ended already, or it was made under another sign-in.',
  RESERVATION_EXPIRED: 'Your hold ran out before the purchase went through. The unit is back on sale.',
  NOT_OWNER: 'That hold belongs to someone else.',
  ALREADY_PURCHASED: 'That hold was already turned into a purchase.',
  ALREADY_RELEASED: 'That hold was already given back.',
  INVALID_INPUT: 'Some of the details are not valid.',
  HOLD_EXISTS: 'You already hold units of this drop. Buy or release that hold before reserving something else.',
  BUYER_LIMIT_REACHED: 'You have reached this drop’s limit per buyer: what you hold and have bought already adds up to it.',
  DROP_PAUSED: 'The shop has paused this drop. Reserving is off until it resumes; a hold you already have can still be bought.',
  STOCK_BELOW_COMMITTED: 'The stock cannot go below the units already held or sold.',
  PRICE_LOCKED: 'The price cannot change once the drop has started.',
  PURCHASE_NOT_FOUND: 'That purchase could not be found.',
  WAITLIST_NOT_NEEDED: 'A unit is free right now, so there is no line to join: reserve it instead.',
  WAITLIST_CLOSED: 'This drop has no waiting list.',
  ALREADY_IN_LINE: 'You already wait in a line of this drop. Leave it first to wait for something else.',
  VARIANT_NOT_FOUND: 'That size no longer exists.',
  DRAW_ONLY: 'This drop is sold by a draw: enter the draw instead of reserving.',
  ENTRIES_CLOSED: 'The draw’s entries have closed: the draw is happening now or has happened.',
  NOT_A_DRAW: 'This drop is sold first come, not by a draw: reserve instead.',
  IDEMPOTENCY_IN_PROGRESS: 'That request is still being worked on. Wait a moment and look again before retrying.',
  IDEMPOTENCY_KEY_REUSED: 'The page sent two different requests as the same action. Reload the page and try again.',
  INVALID_JSON: 'The page sent a request the server could not read.',
  BAD_REQUEST: 'The server could not read that request.',
  RATE_LIMITED: 'Too many tries in a short time. Wait a moment and try again.',
  UNAUTHENTICATED: 'You are signed out: your sign-in ran out or was ended. Sign in again to go on.',
  UNSUPPORTED_MEDIA_TYPE: 'The page sent a request in a form the server does not accept. Reload the page and try again.',
  UNAUTHORIZED: 'The admin token is missing or wrong.',
  FORBIDDEN: 'That admin token is not allowed to do this.',
  PAYLOAD_TOO_LARGE: 'That request is too large for the server.',
  UNAVAILABLE: 'The server is busy right now. Nothing was changed; try again in a moment.',
  INTERNAL: 'Something went wrong on the server. Nothing was changed.',
  NOT_FOUND: 'The server does not know that address.',
  NETWORK: 'The server could not be reached. Check your connection and try again.',
  BAD_RESPONSE: 'The server sent an answer the page cannot read.',
};

/** The plain-words explanation of `code`; `detail` is added for input errors. */
export function plainError(code: string, detail?: string): string {
  const base = PLAIN[code] ?? `Something went wrong (${code}).`;
  if (code === 'INVALID_INPUT' && detail) return `${base} ${capitalise(detail)}.`.replace(/\.\.$/, '.');
  return base;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const TITLES: Record<string, string> = {
  OUT_OF_STOCK: 'Sold out',
  RESERVATION_EXPIRED: 'Hold expired',
  RATE_LIMITED: 'Slow down',
  UNAUTHENTICATED: 'Signed out',
  DROP_NOT_ACTIVE: 'Not on sale',
  DROP_PAUSED: 'Paused',
  BUYER_LIMIT_REACHED: 'Limit reached',
  HOLD_EXISTS: 'Already holding',
  WAITLIST_NOT_NEEDED: 'A unit is free',
  ALREADY_IN_LINE: 'Already in line',
  DRAW_ONLY: 'Draw only',
  ENTRIES_CLOSED: 'Entries closed',
  NETWORK: 'Offline',
  UNAVAILABLE: 'Server busy',
};

/** A short toast title for `code` when `action` (e.g. "reserve") failed. */
export function errorTitle(code: string, action: string): string {
  return TITLES[code] ?? `Could not ${action}`;
}
