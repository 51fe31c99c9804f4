import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import * as api from './api';
import { ApiError, type Buyer } from './api';

/** Whether, and as whom, this browser is signed in. */
export type SessionState =
  /** The first `GET /api/session` has not answered yet. */
  | { status: 'checking' }
  /** Nobody is signed in; `ended` when a session was lost rather than signed out of. */
  | { status: 'signedOut'; ended: boolean }
  | { status: 'signedIn'; buyer: Buyer };

// Tabs of one browser share the session cookie, so a sign-in or sign-out in
// one changes who the others act as. This key only signals "ask the server
// again"; it never holds the token (the cookie is HttpOnly).
const SIGNAL_KEY = 'dropkit.session-changed';

function signalOtherTabs(): void {
  try {
    localStorage.setItem(SIGNAL_KEY, String(Date.now()));
  } catch {
    // Other tabs then notice at their next request or reconnect.
  }
}

/**
 * The guest session: asks the server who is signed in on load, signs in and
 * out, and notices when the session is lost (it ran out, or was ended
 * elsewhere). `onLost` hears of a session lost without the user signing out.
 */
export function useSession(onLost: (buyer: Buyer) => void) {
  const [state, setState] = useState<SessionState>({ status: 'checking' });
  // Read by async callbacks; written with the state, never during render.
  const current = useRef<SessionState>(state);
  const lost = useRef(onLost);
  useLayoutEffect(() => {
    lost.current = onLost;
  });
  // Bumped by every sign-in and sign-out: an answer to a check started
  // before one of them describes a session that is no longer this page's.
  const generation = useRef(0);

  const apply = useCallback((next: SessionState) => {
    current.current = next;
    setState(next);
  }, []);

  /** Asks the server who this browser is signed in as, and follows its answer. */
  const check = useCallback((): Promise<void> => {
    const started = generation.current;
    return api.getSession().then(
      ({ data }) => {
        if (started !== generation.current) return;
        const prev = current.current;
        if (
          prev.status === 'signedIn' &&
          prev.buyer.id === data.buyer.id &&
          prev.buyer.displayName === data.buyer.displayName
        )
          return;
        apply({ status: 'signedIn', buyer: data.buyer });
      },
      (e: unknown) => {
        if (started !== generation.current) return;
        const prev = current.current;
        if (e instanceof ApiError && e.status === 401) {
          if (prev.status === 'signedIn') {
            apply({ status: 'signedOut', ended: true });
            lost.current(prev.buyer);
          } else if (prev.status === 'checking') {
            apply({ status: 'signedOut', ended: false });
          }
        } else if (prev.status === 'checking') {
          // The server could not say. Offer the sign-in form; the next check
          // (after the live feed reconnects) corrects this if a session exists.
          apply({ status: 'signedOut', ended: false });
        }
      },
    );
  }, [apply]);

  /** Signs in as a new guest called `username`; throws the API's error. */
  const signIn = useCallback(
    async (username: string): Promise<Buyer> => {
      const { data } = await api.signIn(username);
      generation.current += 1;
      apply({ status: 'signedIn', buyer: data.buyer });
      signalOtherTabs();
      return data.buyer;
    },
    [apply],
  );

  /** Signs out on the server (which revokes the session); throws when it could not. */
  const signOut = useCallback(async () => {
    await api.signOut();
    generation.current += 1;
    apply({ status: 'signedOut', ended: false });
    signalOtherTabs();
  }, [apply]);

  useEffect(() => {
    void check();
  }, [check]);

  // A buyer route answering 401 means the session may be gone; the server's
  // own word on `GET /api/session` decides, so that a late answer to a
  // request of an earlier session never signs out the current one.
  useEffect(() => api.onUnauthenticated(() => void check()), [check]);

  useEffect(() => {
    const onStorage = (e: StorageEvent) => {
      if (e.key === SIGNAL_KEY) void check();
    };
    window.addEventListener('storage', onStorage);
    return () => window.removeEventListener('storage', onStorage);
  }, [check]);

  return { state, check, signIn, signOut };
}
