import { useCallback, useRef, useState } from 'react';
import { getEntry, type Drop, type Entry } from './api';
import { entriesNewerThan, entriesReducer, type Entries, type EntriesAction } from './draws';

const NONE: Entries = {};

/**
 * The signed-in buyer's draw entries, keyed by drop. They live on the server
 * (the drop listing carries them), so nothing is kept in the browser: a
 * refresh or a new sign-in reads them again. `buyerId` is empty while nobody
 * is signed in (then there are none).
 */
export function useEntries(buyerId: string) {
  // Entries belong to one sign-in: another buyer's never show, even for the
  // moment before the new buyer's listing arrives.
  const [state, setState] = useState<{ owner: string; entries: Entries }>({ owner: buyerId, entries: NONE });

  // When this page last learned something of each drop's entry: a listing
  // asked for before then is older and must not undo it.
  const touched = useRef(new Map<string, number>());

  const apply = useCallback(
    (action: EntriesAction) => {
      if (!buyerId) return;
      setState((prev) => {
        const base = prev.owner === buyerId ? prev.entries : NONE;
        const entries = entriesReducer(base, action);
        return entries === prev.entries && prev.owner === buyerId ? prev : { owner: buyerId, entries };
      });
    },
    [buyerId],
  );

  /** Takes an entry the server answered with just now. */
  const put = useCallback(
    (entry: Entry) => {
      touched.current.set(entry.dropId, performance.now());
      apply({ type: 'put', entry });
    },
    [apply],
  );

  /** The server says the buyer has no entry to this drop. */
  const clearDrop = useCallback(
    (dropId: string) => {
      touched.current.set(dropId, performance.now());
      apply({ type: 'none', dropId });
    },
    [apply],
  );

  /** Takes the entries a drop listing asked for at `askedAt` (`performance.now()`) reports. */
  const mergeFromDrops = useCallback(
    (drops: Drop[], askedAt: number) => {
      apply({ type: 'listing', drops: entriesNewerThan(drops, touched.current, askedAt) });
    },
    [apply],
  );

  /**
   * Reads the buyer's entry to a drop back (after its draw, for the
   * outcome); answers it, or null when there is none or it could not be read.
   */
  const refresh = useCallback(
    async (dropId: string): Promise<Entry | null> => {
      if (!buyerId) return null;
      try {
        const entry = await getEntry(dropId);
        if (entry) put(entry);
        else clearDrop(dropId);
        return entry;
      } catch {
        // Kept as it is; the next listing (after a reconnect) corrects it.
        return null;
      }
    },
    [buyerId, put, clearDrop],
  );

  const entries = buyerId && state.owner === buyerId ? state.entries : NONE;
  return { entries, put, clearDrop, mergeFromDrops, refresh };
}
