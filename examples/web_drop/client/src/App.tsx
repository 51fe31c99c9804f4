import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import * as api from './api';
import { ApiError } from './api';
import { errorTitle, plainError } from './errors';
import { formatPrice } from './format';
import { usernameProblem } from './username';
import { useHolds, type Hold } from './useHolds';
import { useLiveDrops, type LiveDrop } from './useLiveDrops';
import { useServerNow } from './useNow';
import { Header } from './components/Header';
import { DropCard, type Busy } from './components/DropCard';
import { ActivityFeed } from './components/ActivityFeed';
import { AdminPanel } from './components/AdminPanel';
import { Toasts, useToasts } from './components/Toasts';

const USERNAME_KEY = 'dropkit.username';

function readUsername(): string {
  try {
    return localStorage.getItem(USERNAME_KEY) ?? '';
  } catch {
    return '';
  }
}

// Codes after which the hold is certainly no longer the user's to act on.
const HOLD_GONE = new Set([
  'RESERVATION_EXPIRED',
  'RESERVATION_NOT_FOUND',
  'ALREADY_PURCHASED',
  'ALREADY_RELEASED',
  'NOT_OWNER',
]);

function asApiError(e: unknown): ApiError {
  return e instanceof ApiError ? e : new ApiError('NETWORK', String(e), 0);
}

/** The whole page. */
export function App() {
  const { toasts, push, dismiss } = useToasts();
  const [rawName, setRawName] = useState(readUsername);
  const username = usernameProblem(rawName) === null ? rawName.trim() : '';
  const [adminOpen, setAdminOpen] = useState(() => location.hash === '#admin');
  const [busy, setBusy] = useState<Record<string, Busy>>({});
  const [bought, setBought] = useState<Record<string, number>>({});
  const [loadError, setLoadError] = useState<string | null>(null);
  const now = useServerNow(1000);

  const dropsRef = useRef<LiveDrop[]>([]);
  const dropName = (dropId: string) => dropsRef.current.find((d) => d.id === dropId)?.name ?? 'The drop';

  // The local timer ends a hold at `expiresAt` on the server's clock (the
  // server sends no per-hold message: the freed unit shows in the stock);
  // it tells the user once.
  const toldExpired = useRef(new Set<string>());
  const onHoldExpired = useCallback(
    (h: Hold) => {
      if (toldExpired.current.has(h.id)) return;
      toldExpired.current.add(h.id);
      push('info', 'Your hold ran out', `${dropName(h.dropId)} is back on sale. Reserve again if it is still there.`);
    },
    [push],
  );
  const holds = useHolds(username, onHoldExpired);
  // Callbacks handed to the socket read the latest holds and drops through
  // refs, updated after each render commits (never during render).
  const holdsRef = useRef(holds);
  useLayoutEffect(() => {
    holdsRef.current = holds;
  });

  const live = useLiveDrops({
    onResync: () => void holdsRef.current.revalidate(),
  });
  useLayoutEffect(() => {
    dropsRef.current = live.drops;
  });
  const { loadList } = live;
  const { mergeFromDrops, revalidate } = holds;

  // The listing carries this user's holds; the snapshot does not.
  useEffect(() => {
    let cancelled = false;
    api
      .listDrops(username || undefined)
      .then(({ data }) => {
        if (cancelled) return;
        setLoadError(null);
        loadList(data);
        mergeFromDrops(data);
      })
      .catch((e) => {
        if (!cancelled) setLoadError(plainError(asApiError(e).code));
      });
    void revalidate();
    return () => {
      cancelled = true;
    };
  }, [username, loadList, mergeFromDrops, revalidate]);

  const onUsername = (value: string) => {
    setRawName(value);
    try {
      localStorage.setItem(USERNAME_KEY, value);
    } catch {
      // Not remembering the name only means typing it again.
    }
  };

  const withBusy = async (dropId: string, what: Exclude<Busy, null>, fn: () => Promise<void>) => {
    setBusy((b) => ({ ...b, [dropId]: what }));
    try {
      await fn();
    } finally {
      setBusy((b) => ({ ...b, [dropId]: null }));
    }
  };

  const onReserve = (drop: LiveDrop) =>
    withBusy(drop.id, 'reserve', async () => {
      try {
        const { status, data } = await api.reserve(drop.id, username);
        holds.put(data);
        if (status === 201)
          push('success', `Reserved: ${drop.name}`, `It is yours for ${drop.holdSeconds} s. Complete the purchase before the timer runs out.`);
        else push('info', 'You already hold one', 'Same hold, same timer: reserving again does not extend it.');
      } catch (e) {
        const err = asApiError(e);
        push('error', errorTitle(err.code, 'reserve'), plainError(err.code, err.message));
      }
    });

  const onPurchase = (drop: LiveDrop, hold: Hold) =>
    withBusy(drop.id, 'purchase', async () => {
      try {
        const { data } = await api.purchase(hold.id, username);
        holds.removeById(hold.id);
        setBought((b) => ({ ...b, [drop.id]: (b[drop.id] ?? 0) + 1 }));
        push('success', `Purchased: ${drop.name}`, `Paid ${formatPrice(data.amountPaid ?? drop.price)}. Enjoy!`);
      } catch (e) {
        const err = asApiError(e);
        if (HOLD_GONE.has(err.code)) holds.removeById(hold.id);
        push('error', errorTitle(err.code, 'complete the purchase'), plainError(err.code, err.message));
      }
    });

  const onRelease = (drop: LiveDrop, hold: Hold) =>
    withBusy(drop.id, 'release', async () => {
      try {
        await api.release(hold.id, username);
        holds.removeById(hold.id);
        push('info', 'Hold released', `${drop.name} is back on sale for everyone.`);
      } catch (e) {
        const err = asApiError(e);
        if (HOLD_GONE.has(err.code)) holds.removeById(hold.id);
        push('error', errorTitle(err.code, 'release the hold'), plainError(err.code, err.message));
      }
    });

  const visible = live.drops.filter((d) => !d.endsAt || Date.parse(d.endsAt) > now);

  return (
    <>
      <a href="#drops" className="skip">
        Skip to drops
      </a>
      <Header
        connection={live.connection}
        username={rawName}
        onUsername={onUsername}
        adminOpen={adminOpen}
        onToggleAdmin={() => setAdminOpen((o) => !o)}
      />
      <main className="page">
        {adminOpen && (
          <div id="admin-panel">
            <AdminPanel
              onClose={() => setAdminOpen(false)}
              onCreated={(drop) => {
                live.upsert(drop);
                push('success', `Drop created: ${drop.name}`, 'Everyone watching sees it now.');
              }}
            />
          </div>
        )}
        <div className="layout">
          <section id="drops" className="drops" aria-labelledby="drops-title">
            <div className="section-head">
              <h1 id="drops-title">Drops</h1>
              <p className="section-sub">One unit per reserve, held for you while the timer runs. Stock moves live.</p>
            </div>
            {!live.loaded ? (
              <p className="empty" role="status">
                {loadError ?? 'Loading drops…'}
              </p>
            ) : visible.length === 0 ? (
              <p className="empty">No drops on sale right now. New drops appear here the moment they are created.</p>
            ) : (
              <div className="grid">
                {visible.map((d) => {
                  const hold = holds.byDrop[d.id];
                  return (
                    <DropCard
                      key={d.id}
                      drop={d}
                      hold={hold}
                      connection={live.connection}
                      busy={busy[d.id] ?? null}
                      bought={bought[d.id] ?? 0}
                      canReserve={username !== ''}
                      onReserve={() => void onReserve(d)}
                      onPurchase={() => hold && void onPurchase(d, hold)}
                      onRelease={() => hold && void onRelease(d, hold)}
                    />
                  );
                })}
              </div>
            )}
          </section>
          <ActivityFeed items={live.activity} />
        </div>
      </main>
      <footer className="footer">
        <p>Served by the dropkit web_drop example. Times count down on the server's clock.</p>
      </footer>
      <Toasts toasts={toasts} onDismiss={dismiss} />
    </>
  );
}
