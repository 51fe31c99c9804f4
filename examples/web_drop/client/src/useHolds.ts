import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { getReservation, type Drop, type Reservation } from './api';
import { serverNow } from './clock';

/** The user's active hold on one drop. */
export interface Hold {
  id: string;
  dropId: string;
  username: string;
  /** Expiry on the server's clock, in epoch milliseconds. */
  expiresAt: number;
}

const STORAGE_KEY = 'dropkit.holds';

function readStored(): Hold[] {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    const list = raw ? (JSON.parse(raw) as unknown) : [];
    if (!Array.isArray(list)) return [];
    return list.filter(
      (h): h is Hold =>
        !!h &&
        typeof h.id === 'string' &&
        typeof h.dropId === 'string' &&
        typeof h.username === 'string' &&
        typeof h.expiresAt === 'number',
    );
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

/** Turns an API reservation into a hold, or null when it is not active. */
function toHold(r: Reservation): Hold | null {
  const expiresAt = Date.parse(r.expiresAt);
  if (r.status !== 'active' || Number.isNaN(expiresAt)) return null;
  return { id: r.id, dropId: r.dropId, username: r.username, expiresAt };
}

/**
 * The current user's holds, keyed by drop: kept in localStorage so a page
 * refresh brings them back, checked against the server on load, and dropped
 * when their time is up on the server's clock.
 */
export function useHolds(username: string, onExpire: (hold: Hold) => void) {
  // Holds that ran out while the page was closed are dropped quietly.
  const [all, setAll] = useState<Hold[]>(() => readStored().filter((h) => h.expiresAt > serverNow()));
  const expire = useRef(onExpire);
  useLayoutEffect(() => {
    expire.current = onExpire;
  });

  const update = useCallback((fn: (holds: Hold[]) => Hold[]) => {
    setAll((prev) => {
      const next = fn(prev);
      if (next !== prev) writeStored(next);
      return next;
    });
  }, []);

  const put = useCallback(
    (r: Reservation) => {
      const hold = toHold(r);
      update((prev) => {
        const rest = prev.filter((h) => !(h.dropId === r.dropId && h.username === r.username));
        return hold ? [...rest, hold] : rest;
      });
    },
    [update],
  );

  const removeById = useCallback(
    (id: string) => update((prev) => (prev.some((h) => h.id === id) ? prev.filter((h) => h.id !== id) : prev)),
    [update],
  );

  /** Asks the server about every remembered hold of this user; keeps only active ones. */
  const revalidate = useCallback(async () => {
    if (!username) return;
    const mine = readStored().filter((h) => h.username === username);
    await Promise.all(
      mine.map(async (h) => {
        try {
          const { data } = await getReservation(h.id);
          const fresh = toHold(data);
          if (fresh && fresh.username === username && fresh.expiresAt > serverNow()) put(data);
          else removeById(h.id);
        } catch (e) {
          // Only a definite "no" forgets the hold; a network blip keeps it.
          const code = (e as { code?: string }).code;
          if (code !== 'NETWORK' && code !== 'UNAVAILABLE' && code !== 'RATE_LIMITED') removeById(h.id);
        }
      }),
    );
  }, [username, put, removeById]);

  /** Takes the holds a drop listing reports for this user. */
  const mergeFromDrops = useCallback(
    (drops: Drop[]) => {
      if (!username) return;
      update((prev) => {
        let next = prev;
        for (const d of drops) {
          const r = d.userReservation;
          if (!r) continue;
          const expiresAt = Date.parse(r.expiresAt);
          if (Number.isNaN(expiresAt) || next.some((h) => h.id === r.id)) continue;
          next = [
            ...next.filter((h) => !(h.dropId === d.id && h.username === username)),
            { id: r.id, dropId: d.id, username, expiresAt },
          ];
        }
        return next;
      });
    },
    [username, update],
  );

  // Another tab of the same browser may reserve or buy; follow its holds.
  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key === STORAGE_KEY) setAll(readStored());
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, []);

  // Holds end on time by this timer alone: the server sends no per-hold
  // message (an expiry shows as the drop's stock), and it treats a hold
  // past expiresAt as gone even before its sweeper runs. The
  // timer aims at the next expiry and re-aims if the clock estimate moved.
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
      update((prev) => prev.filter((h) => h.expiresAt > now));
      for (const h of due) if (h.username === username) expire.current(h);
    };
    check();
    return () => clearTimeout(timer);
  }, [all, username, update]);

  const byDrop: Record<string, Hold> = {};
  for (const h of all) if (h.username === username) byDrop[h.dropId] = h;

  return { byDrop, put, removeById, revalidate, mergeFromDrops };
}
