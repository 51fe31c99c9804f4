import { useCallback, useRef, useState } from 'react';
import { getWaitlistPlace, type Drop, type WaitlistPlace } from './api';
import { listingNewerThan, placesReducer, type Places, type PlacesAction } from './waitlist';

const NONE: Places = {};

/**
 * The signed-in buyer's places in waiting lines, keyed by drop. They live on
 * the server (the drop listing carries them), so nothing is stored in the
 * browser: a refresh or a new sign-in reads them again. `buyerId` is empty
 * while nobody is signed in (then there are none).
 */
export function useWaitlist(buyerId: string) {
  // Places belong to one sign-in: another buyer's never show, even for the
  // moment before the new buyer's listing arrives.
  const [state, setState] = useState<{ owner: string; places: Places }>({ owner: buyerId, places: NONE });

  // When this page last learned something of each drop's place (a join or
  // leave answer, a frame): a listing asked for before then is older and
  // must not undo it.
  const touched = useRef(new Map<string, number>());

  const apply = useCallback(
    (action: PlacesAction) => {
      if (!buyerId) return;
      setState((prev) => {
        const base = prev.owner === buyerId ? prev.places : NONE;
        const places = placesReducer(base, action);
        return places === prev.places && prev.owner === buyerId ? prev : { owner: buyerId, places };
      });
    },
    [buyerId],
  );

  /** Applies a change the server reported just now (an answer or a frame). */
  const dispatch = useCallback(
    (action: PlacesAction) => {
      // A public `moved` frame changes no one's place but the position, and
      // comes for lines the buyer is not in: it does not hold a listing off.
      if (action.type !== 'listing' && action.type !== 'moved') {
        touched.current.set(action.type === 'put' ? action.place.dropId : action.dropId, performance.now());
      }
      apply(action);
    },
    [apply],
  );

  const put = useCallback((place: WaitlistPlace) => dispatch({ type: 'put', place }), [dispatch]);
  const clearDrop = useCallback((dropId: string) => dispatch({ type: 'none', dropId }), [dispatch]);

  /**
   * Takes the places a drop listing reports; `askedAt` is when the listing
   * was asked for (`performance.now()`): drops whose place changed since
   * keep what the page learned later.
   */
  const mergeFromDrops = useCallback(
    (drops: Drop[], askedAt: number) => {
      apply({ type: 'listing', drops: listingNewerThan(drops, touched.current, askedAt) });
    },
    [apply],
  );

  /** Asks the server for the buyer's place in a drop's lines (a place heard of without its position). */
  const refresh = useCallback(
    async (dropId: string) => {
      if (!buyerId) return;
      try {
        const place = await getWaitlistPlace(dropId);
        if (place) put(place);
        else clearDrop(dropId);
      } catch {
        // The place stays as it is; the next listing (after a reconnect) corrects it.
      }
    },
    [buyerId, put, clearDrop],
  );

  const places = buyerId && state.owner === buyerId ? state.places : NONE;
  return { places, dispatch, put, clearDrop, mergeFromDrops, refresh };
}
