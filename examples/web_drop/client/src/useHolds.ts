import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { getReservation, type Drop, type Reservation } from './api';
import { serverNow } from './clock';

/** The signed-in buyer's active hold on one drop. */
export interface Hold {
  id: string;
  dropId: string;
  /**
   * The buyer it belongs to. Each sign-in is a new buyer, so holds of an
   * earlier sign-in in this browser are never shown to the next one.
   */
  buyerId: string;
  /** The variant (size) held; empty when the server did not say. */
  variantId: string;
  /** Units held. */
  quantity: number;
  /** Expiry on the server's clock, in epoch milliseconds. */
  expiresAt: number;
  /** Offered from the waiting line (a unit freed up for this buyer) rather than reserved. */
  offered: boolean;
}

// Holds remembered by an older page, or answers of a server without
// variants, count as one unit of an unnamed variant.
function heldQuantity(q: unknown): number {
  return typeof q === 'number' && Number.isInteger(q) && q > 0 ? q : 1;
}

/** What changes the remembered holds. */
export type HoldsAction =
  /** The server answered with one of the buyer's holds (reserve, read back). */
  | { type: 'put'; buyerId: string; reservation: Reservation }
  /** A hold ended: bought, given back, ran out, or the server no longer knows it. */
  | { type: 'remove'; id: string }
  /** A drop listing reports the buyer's active holds. */
  | { type: 'listing'; buyerId: string; drops: Drop[] }
  /** Drops every hold whose time is up at `now` (server clock). */
  | { type: 'expire'; now: number }
  /** The buyer signed out: their holds can no longer be acted on from here. */
  | { type: 'forgetBuyer'; buyerId: string };

/** Turns an API reservation into a hold, or null when it is not active. */
function toHold(r: Reservation, buyerId: string): Hold | null {
  const expiresAt = Date.parse(r.expiresAt);
  if (r.status !== 'active' || Number.isNaN(expiresAt)) return null;
  return {
    id: r.id,
    dropId: r.dropId,
    buyerId,
    variantId: typeof r.variantId === 'string' ? r.variantId : '',
    quantity: heldQuantity(r.quantity),
    expiresAt,
    offered: r.offered === true,
  };
}

/**
 * The remembered holds' transitions: pure, so they are unit tested. Returns
 * `holds` itself when nothing changes, so no write or render follows.
 */
export function holdsReducer(holds: Hold[], action: HoldsAction): Hold[] {
  switch (action.type) {
    case 'put': {
      const r = action.reservation;
      const hold = toHold(r, action.buyerId);
      // At most one active hold per drop and buyer: the answer replaces it.
      const rest = holds.filter((h) => h.id !== r.id && !(h.dropId === r.dropId && h.buyerId === action.buyerId));
      if (!hold && rest.length === holds.length) return holds;
      return hold ? [...rest, hold] : rest;
    }
    case 'remove':
      return holds.some((h) => h.id === action.id) ? holds.filter((h) => h.id !== action.id) : holds;
    case 'listing': {
      let next = holds;
      for (const d of action.drops) {
        const r = d.userReservation;
        if (!r) continue;
        const expiresAt = Date.parse(r.expiresAt);
        if (Number.isNaN(expiresAt) || next.some((h) => h.id === r.id)) continue;
        next = [
          ...next.filter((h) => !(h.dropId === d.id && h.buyerId === action.buyerId)),
          {
            id: r.id,
            dropId: d.id,
            buyerId: action.buyerId,
            variantId: typeof r.variantId === 'string' ? r.variantId : '',
            quantity: heldQuantity(r.quantity),
            expiresAt,
            offered: r.offered === true,
          },
        ];
      }
      return next;
    }
    case 'expire':
      return holds.some((h) => h.expiresAt <= action.now) ? holds.filter((h) => h.expiresAt > action.now) : holds;
    case 'forgetBuyer':
      return holds.some((h) => h.buyerId === action.buyerId)
        ? holds.filter((h) => h.buyerId !== action.buyerId)
        : holds;
  }
}

// Hold ids and expiry times only: the session token is never stored here
// (it lives in an HttpOnly cookie the page cannot read).
const STORAGE_KEY = 'dropkit.holds';

function readStored(): Hold[] {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    const list = raw ? (JSON.parse(raw) as unknown) : [];
    if (!Array.isArray(list)) return [];
    return list
      .filter(
        (h): h is Hold =>
          !!h &&
          typeof h.id === 'string' &&
          typeof h.dropId === 'string' &&
          typeof h.buyerId === 'string' &&
          typeof h.expiresAt === 'number',
      )
      .map((h) => ({
        ...h,
        variantId: typeof h.variantId === 'string' ? h.variantId : '',
        quantity: heldQuantity(h.quantity),
        offered: h.offered === true,
      }));
  } catch {
    return [];
  }
}

function writeStored(holds: Hold[]): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(holds));
  } catch {
    // Private mode or a full quota: holds then last for this page only.
  }
}

/**
 * The signed-in buyer's holds, keyed by drop: kept in localStorage so a page
 * refresh brings them back, checked against the server on load, and dropped
 * when their time is up on the server's clock or the server says they ended.
 * `buyerId` is empty while nobody is signed in (then no hold is shown).
 */
export function useHolds(buyerId: string, onExpire: (hold: Hold) => void) {
  // Holds that ran out while the page was closed are dropped quietly.
  const [all, setAll] = useState<Hold[]>(() => holdsReducer(readStored(), { type: 'expire', now: serverNow() }));
  const expire = useRef(onExpire);
  useLayoutEffect(() => {
    expire.current = onExpire;
  });

  const dispatch = useCallback((action: HoldsAction) => {
    setAll((prev) => {
      const next = holdsReducer(prev, action);
      if (next !== prev) writeStored(next);
      return next;
    });
  }, []);

  const put = useCallback(
    (r: Reservation) => {
      if (buyerId) dispatch({ type: 'put', buyerId, reservation: r });
    },
    [buyerId, dispatch],
  );

  const removeById = useCallback((id: string) => dispatch({ type: 'remove', id }), [dispatch]);

  const forgetBuyer = useCallback((id: string) => dispatch({ type: 'forgetBuyer', buyerId: id }), [dispatch]);

  /** Asks the server about every remembered hold of this buyer; keeps only active ones. */
  const revalidate = useCallback(async () => {
    if (!buyerId) return;
    const mine = readStored().filter((h) => h.buyerId === buyerId);
    await Promise.all(
      mine.map(async (h) => {
        try {
          // The server answers only the caller's own holds (404 otherwise).
          const { data } = await getReservation(h.id);
          const fresh = toHold(data, buyerId);
          if (fresh && fresh.expiresAt > serverNow()) dispatch({ type: 'put', buyerId, reservation: data });
          else removeById(h.id);
        } catch (e) {
          // Only a definite "no" forgets the hold; a network blip keeps it.
          const code = (e as { code?: string }).code;
          if (code !== 'NETWORK' && code !== 'UNAVAILABLE' && code !== 'RATE_LIMITED') removeById(h.id);
        }
      }),
    );
  }, [buyerId, dispatch, removeById]);

  /** Takes the holds a drop listing reports for this buyer. */
  const mergeFromDrops = useCallback(
    (drops: Drop[]) => {
      if (buyerId) dispatch({ type: 'listing', buyerId, drops });
    },
    [buyerId, dispatch],
  );

  // Another tab of the same browser may reserve or buy; follow its holds.
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key === STORAGE_KEY) setAll(readStored());
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  // The server tells a signed-in socket when a hold ends, but a hold past
  // expiresAt is already gone for the server even before its sweeper runs,
  // so this timer ends holds on time by itself. It aims at the next expiry
  // and re-aims if the clock estimate moved.
  useEffect(() => {
    if (all.length === 0) return;
    let timer: ReturnType<typeof setTimeout>;
    const check = () => {
      const now = serverNow();
      const due = all.filter((h) => h.expiresAt <= now);
      if (due.length === 0) {
        const next = Math.min(...all.map((h) => h.expiresAt));
        timer = setTimeout(check, Math.min(1000, Math.max(10, next - now)));
        return;
      }
      dispatch({ type: 'expire', now });
      for (const h of due) if (h.buyerId === buyerId) expire.current(h);
    };
    check();
    return () => clearTimeout(timer);
  }, [all, buyerId, dispatch]);

  const byDrop: Record<string, Hold> = {};
  if (buyerId) for (const h of all) if (h.buyerId === buyerId) byDrop[h.dropId] = h;

  return { byDrop, put, removeById, forgetBuyer, revalidate, mergeFromDrops };
}
