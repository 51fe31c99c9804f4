import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import * as api from './api';
import { ApiError } from './api';
import { errorTitle, plainError } from './errors';
import { serverOffset } from './clock';
import { formatPrice, formatTime } from './format';
import { holdLabel } from './inventory';
import { useBought } from './useBought';
import { useHolds, type Hold } from './useHolds';
import { useLiveDrops, type HoldEnd, type LineChange, type LiveDrop } from './useLiveDrops';
import { useWaitlist } from './useWaitlist';
import { useEntries } from './useEntries';
import { isDraw, shortReceipt } from './draws';
import { leaveNotice, lineLength, placeText, toPlace, type Places } from './waitlist';
import { useSession } from './useSession';
import { useServerNow } from './useNow';
import { Header } from './components/Header';
import { DropCard, type Busy, type ReserveChoice } from './components/DropCard';
import { MyPurchases } from './components/MyPurchases';
import { ActivityFeed } from './components/ActivityFeed';
import { AdminPanel } from './components/AdminPanel';
import { Toasts, useToasts } from './components/Toasts';

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
  const [adminOpen, setAdminOpen] = useState(() => location.hash === '#admin');
  const [busy, setBusy] = useState<Record<string, Busy>>({});
  const [purchasesOpen, setPurchasesOpen] = useState(false);
  // Bumped when the buyer buys something, so an open list reads its first
  // page again; a cancellation restarts the list (its key) instead.
  const [purchasesVersion, setPurchasesVersion] = useState(0);
  const [purchasesReset, setPurchasesReset] = useState(0);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [signingOut, setSigningOut] = useState(false);
  const now = useServerNow(1000);

  const dropsRef = useRef<LiveDrop[]>([]);
  const dropName = (dropId: string) => dropsRef.current.find((d) => d.id === dropId)?.name ?? 'The drop';
  // Where a unit given up goes: to the next buyer in line while anyone waits
  // for its size, else back on sale.
  const whereUnitsGo = (dropId: string, variantId: string) => {
    const variant = dropsRef.current.find((d) => d.id === dropId)?.variants.find((v) => v.id === variantId);
    return lineLength(variant) > 0 ? 'goes to the next buyer in line' : 'is back on sale';
  };

  // A hold ends at `expiresAt` by the local timer and by the server's
  // `holdExpired` frame, whichever comes first; the user is told once.
  const toldExpired = useRef(new Set<string>());
  const onHoldExpired = useCallback(
    (h: Hold) => {
      if (toldExpired.current.has(h.id)) return;
      toldExpired.current.add(h.id);
      push(
        'info',
        'Your hold ran out',
        `${dropName(h.dropId)} ${whereUnitsGo(h.dropId, h.variantId)}. Reserve again if it is still there.`,
      );
    },
    [push],
  );

  // Holds and the buyer-count belong to one sign-in; a lost session takes
  // them along and the user is asked to sign in again.
  const holdsRef = useRef<ReturnType<typeof useHolds> | null>(null);
  const session = useSession((buyer) => {
    holdsRef.current?.forgetBuyer(buyer.id);
    push('error', 'Signed out', plainError('UNAUTHENTICATED'));
  });
  const signedIn = session.state.status === 'signedIn' ? session.state.buyer : null;
  const buyerId = signedIn?.id ?? '';
  // null until the server has said who this is: no socket or listing before.
  const sessionKey = session.state.status === 'checking' ? null : buyerId;

  const holds = useHolds(buyerId, onHoldExpired);
  const lines = useWaitlist(buyerId);
  const entries = useEntries(buyerId);
  const entriesRef = useRef(entries.entries);
  const placesRef = useRef<Places>({});
  const { bought, refresh: refreshBought } = useBought(buyerId);
  const purchasesChanged = () => {
    refreshBought();
    setPurchasesVersion((v) => v + 1);
  };
  // Callbacks handed to the socket and the session read the latest holds and
  // drops through refs, updated after each render commits (never during render).
  useLayoutEffect(() => {
    holdsRef.current = holds;
    placesRef.current = lines.places;
    entriesRef.current = entries.entries;
  });
  const checkSession = session.check;

  // Holds with a purchase or release of this page in flight: that request's
  // answer tells the user, not the socket's frame about the same hold.
  const acting = useRef(new Set<string>());
  const onHoldEnded = (end: HoldEnd) => {
    const current = holdsRef.current;
    if (!current) return;
    const hold = Object.values(current.byDrop).find((h) => h.id === end.reservationId);
    current.removeById(end.reservationId);
    const ours = hold !== undefined && acting.current.has(hold.id);
    // Bought elsewhere (even a hold this page never saw): the counts behind
    // the per-buyer limit change.
    if (end.how === 'purchased' && !ours) purchasesChanged();
    if (!hold || ours) return;
    const name = dropName(end.dropId);
    if (end.how === 'expired') onHoldExpired(hold);
    else if (end.how === 'released')
      push('info', 'Hold released', `Your hold on ${name} was given back from another tab or device.`);
    else push('success', `Purchased: ${name}`, 'Bought from another tab or device.');
  };

  // Drops whose line this page is leaving: that request's answer tells the
  // user, not the socket's frame about the same place.
  const leaving = useRef(new Set<string>());

  const onHoldOffered = (dropId: string, reservation: api.Reservation) => {
    holdsRef.current?.put(reservation);
    lines.clearDrop(dropId);
    const drop = dropsRef.current.find((d) => d.id === dropId);
    // A draw drop's first offers are its winners' holds (created at the
    // draw, before the public drawCompleted frame): said as a win.
    if (drop && isDraw(drop) && entriesRef.current[dropId] && !entriesRef.current[dropId]?.outcome) {
      const until = formatTime(Date.parse(reservation.expiresAt) - serverOffset());
      push('success', 'You won the draw', `${dropName(dropId)} is held for you until ${until}. Complete the purchase before then.`);
      return;
    }
    const size = drop && drop.variants.length > 1 ? drop.variants.find((v) => v.id === reservation.variantId) : undefined;
    const what = holdLabel(size?.name ?? null, reservation.quantity);
    const named = what ? `${dropName(dropId)} (${what})` : dropName(dropId);
    const until = formatTime(Date.parse(reservation.expiresAt) - serverOffset());
    push('success', 'A unit freed up for you', `${named} is yours until ${until}. Complete the purchase before then.`);
  };

  const onLineChange = (change: LineChange) => {
    const known = placesRef.current[change.dropId];
    switch (change.type) {
      case 'joined':
        lines.dispatch(change);
        // Joined from another tab or device: the frame has no position, so ask.
        if (!known || known.ticket !== change.ticket) void lines.refresh(change.dropId);
        break;
      case 'left': {
        lines.dispatch({ type: 'left', dropId: change.dropId, ticket: change.ticket });
        const ours = change.reason === 'left' && leaving.current.has(change.dropId);
        if (!known || known.ticket !== change.ticket || ours) return;
        const notice = leaveNotice(change.reason, dropName(change.dropId));
        if (notice) push(change.reason === 'skipped' ? 'error' : 'info', notice.title, notice.body);
        break;
      }
      case 'moved':
        lines.dispatch(change);
        break;
    }
  };

  // The draw of a drop happened: an entrant reads their outcome back (the
  // frame is public and names nobody); one left waiting reads their place,
  // which the line's later frames then move.
  const onDrawCompleted = (frame: api.DrawCompletedFrame) => {
    if (!entriesRef.current[frame.dropId]) return;
    void entries.refresh(frame.dropId).then((entry) => {
      if (!entry) return;
      if (entry.outcome === 'waiting') {
        void lines.refresh(frame.dropId);
        push('info', 'Not drawn this time', `You wait in line for ${dropName(frame.dropId)}: a unit that frees up is held for you.`);
      } else if (entry.outcome === 'lost') {
        push('info', 'Not drawn this time', `Your entry to ${dropName(frame.dropId)} did not win.`);
      } else if (entry.outcome === 'won' && !holdsRef.current?.byDrop[frame.dropId]) {
        // The hold's own frame went by unseen (the socket was down): read it.
        void readListing();
      }
    });
  };

  const onPurchaseCancelled = (purchaseId: string, dropId: string) => {
    refreshBought();
    setPurchasesReset((r) => r + 1);
    push('info', 'Purchase cancelled', `The shop cancelled your purchase of ${dropName(dropId)} (${purchaseId}).`);
  };

  const live = useLiveDrops(
    {
      onResync: (reconnected) => {
        // The snapshot carries no buyer's holds or places, and frames about
        // them may have gone by before the socket was open (or while it was
        // down): the listing has them as they are now.
        if (buyerId) void readListing();
        // A first connection follows the session check, which did this
        // already. After a reconnect, holds may have ended and the session
        // may be gone (or the first check may have found the server
        // unreachable).
        if (!reconnected) return;
        void checkSession();
        void holdsRef.current?.revalidate();
        refreshBought();
      },
      onHoldEnded,
      onPurchaseCancelled,
      onHoldOffered,
      onLineChange,
      onDrawCompleted,
    },
    sessionKey,
  );
  useLayoutEffect(() => {
    dropsRef.current = live.drops;
  });
  const { loadList } = live;
  const { mergeFromDrops, revalidate } = holds;
  const mergePlaces = lines.mergeFromDrops;
  const mergeEntries = entries.mergeFromDrops;

  // The buyer's holds and places as the listing has them now.
  const readListing = useCallback(async () => {
    const askedAt = performance.now();
    try {
      const { data } = await api.listDrops();
      holdsRef.current?.mergeFromDrops(data);
      mergePlaces(data, askedAt);
      mergeEntries(data, askedAt);
    } catch {
      // Kept as they are; the next resync reads them again.
    }
  }, [mergePlaces, mergeEntries]);

  // The listing carries this buyer's holds and places; the snapshot does not.
  useEffect(() => {
    if (sessionKey === null) return;
    let cancelled = false;
    const askedAt = performance.now();
    api
      .listDrops()
      .then(({ data }) => {
        if (cancelled) return;
        setLoadError(null);
        loadList(data);
        mergeFromDrops(data);
        mergePlaces(data, askedAt);
        mergeEntries(data, askedAt);
      })
      .catch((e) => {
        if (!cancelled) setLoadError(plainError(asApiError(e).code));
      });
    void revalidate();
    return () => {
      cancelled = true;
    };
  }, [sessionKey, loadList, mergeFromDrops, mergePlaces, mergeEntries, revalidate]);

  const onSignIn = async (username: string) => {
    await session.signIn(username);
  };

  const onSignOut = async () => {
    if (!signedIn) return;
    setSigningOut(true);
    try {
      await session.signOut();
      holds.forgetBuyer(signedIn.id);
      setPurchasesOpen(false);
      push('info', 'Signed out', 'Sign in again to reserve.');
    } catch (e) {
      const err = asApiError(e);
      push('error', 'Could not sign out', plainError(err.code, err.message));
    } finally {
      setSigningOut(false);
    }
  };

  // A lost session is told once, by the session check that a 401 starts.
  const tell = (err: ApiError, action: string) => {
    if (err.code !== 'UNAUTHENTICATED') push('error', errorTitle(err.code, action), plainError(err.code, err.message));
  };

  const withBusy = async (dropId: string, what: Exclude<Busy, null>, fn: () => Promise<void>) => {
    setBusy((b) => ({ ...b, [dropId]: what }));
    try {
      await fn();
    } finally {
      setBusy((b) => ({ ...b, [dropId]: null }));
    }
  };

  const onReserve = (drop: LiveDrop, choice: ReserveChoice) =>
    withBusy(drop.id, 'reserve', async () => {
      const size = (drop.variants ?? []).find((v) => v.id === choice.variantId);
      const what = holdLabel((drop.variants ?? []).length > 1 ? (size?.name ?? null) : null, choice.quantity);
      const named = what ? `${drop.name} (${what})` : drop.name;
      try {
        // One key for this click: the call's own retries resend it, so a
        // lost answer never holds twice.
        const { status, data } = await api.reserve({ dropId: drop.id, variantId: choice.variantId, quantity: choice.quantity });
        holds.put(data);
        if (status === 201)
          push('success', `Reserved: ${named}`, `It is yours for ${drop.holdSeconds} s. Complete the purchase before the timer runs out.`);
        else push('info', 'You already hold this', 'Same hold, same timer: reserving again does not extend it.');
      } catch (e) {
        const err = asApiError(e);
        const existing = (err.body as { reservation?: api.Reservation } | undefined)?.reservation;
        if (err.code === 'HOLD_EXISTS' && existing && typeof existing === 'object') {
          holds.put(existing);
          push('info', 'You already hold units of this drop', 'Buy or release that hold first; it is shown on the card.');
          return;
        }
        // The page's count may be behind (a purchase from another device).
        if (err.code === 'BUYER_LIMIT_REACHED') refreshBought();
        tell(err, 'reserve');
      }
    });

  const onJoin = (drop: LiveDrop, choice: ReserveChoice) =>
    withBusy(drop.id, 'join', async () => {
      try {
        const { status, data } = await api.joinWaitlist(drop.id, { variantId: choice.variantId, quantity: choice.quantity });
        lines.put(data);
        const place = toPlace(data);
        const where = place ? placeText(place) : 'You are in line';
        if (status === 201)
          push('success', `In line: ${drop.name}`, `${where}. When a unit frees up it is held for you, and this page tells you at once.`);
        else push('info', 'You are already in this line', `${where}; asking again keeps your place.`);
      } catch (e) {
        const err = asApiError(e);
        const body = err.body as { place?: api.WaitlistPlace; reservation?: api.Reservation } | undefined;
        if (err.code === 'ALREADY_IN_LINE' && body?.place && typeof body.place === 'object') {
          lines.put(body.place);
          push('info', 'You already wait in this drop’s line', plainError(err.code));
          return;
        }
        if (err.code === 'HOLD_EXISTS' && body?.reservation && typeof body.reservation === 'object') {
          holds.put(body.reservation);
          push('info', 'You already hold units of this drop', 'Buy or release that hold first; it is shown on the card.');
          return;
        }
        if (err.code === 'BUYER_LIMIT_REACHED') refreshBought();
        tell(err, 'join the waiting list');
      }
    });

  const onLeave = (drop: LiveDrop) =>
    withBusy(drop.id, 'leave', async () => {
      leaving.current.add(drop.id);
      try {
        await api.leaveWaitlist(drop.id);
        lines.clearDrop(drop.id);
        push('info', 'You left the line', `You no longer wait for ${drop.name}.`);
      } catch (e) {
        tell(asApiError(e), 'leave the line');
      } finally {
        leaving.current.delete(drop.id);
      }
    });

  const onEnter = (drop: LiveDrop, variantId: string | undefined) =>
    withBusy(drop.id, 'enter', async () => {
      try {
        const { status, data } = await api.enterDraw(drop.id, variantId);
        entries.put(data);
        const receipt = shortReceipt(String(data.receipt ?? ''));
        if (status === 201)
          push('success', `In the draw: ${drop.name}`, `Receipt ${receipt}: if you win, a unit is held for you at the draw.`);
        else push('info', 'You are already in this draw', `One entry per buyer; yours has receipt ${receipt}`);
      } catch (e) {
        const err = asApiError(e);
        if (err.code === 'ENTRIES_CLOSED') void entries.refresh(drop.id);
        tell(err, 'enter the draw');
      }
    });

  const onWithdraw = (drop: LiveDrop) =>
    withBusy(drop.id, 'withdraw', async () => {
      try {
        await api.withdrawEntry(drop.id);
        entries.clearDrop(drop.id);
        push('info', 'You withdrew from the draw', `You are no longer in the draw for ${drop.name}.`);
      } catch (e) {
        tell(asApiError(e), 'withdraw');
      }
    });

  const onPurchase = (drop: LiveDrop, hold: Hold) =>
    withBusy(drop.id, 'purchase', async () => {
      acting.current.add(hold.id);
      try {
        const { data } = await api.purchase(hold.id);
        holds.removeById(hold.id);
        purchasesChanged();
        push('success', `Purchased: ${drop.name}`, `Paid ${formatPrice(data.amountPaid ?? drop.price)}. Enjoy!`);
      } catch (e) {
        const err = asApiError(e);
        if (HOLD_GONE.has(err.code)) holds.removeById(hold.id);
        tell(err, 'complete the purchase');
      } finally {
        acting.current.delete(hold.id);
      }
    });

  const onRelease = (drop: LiveDrop, hold: Hold) =>
    withBusy(drop.id, 'release', async () => {
      acting.current.add(hold.id);
      try {
        await api.release(hold.id);
        holds.removeById(hold.id);
        push('info', 'Hold released', `${drop.name} ${whereUnitsGo(drop.id, hold.variantId)}.`);
      } catch (e) {
        const err = asApiError(e);
        if (HOLD_GONE.has(err.code)) holds.removeById(hold.id);
        tell(err, 'release the hold');
      } finally {
        acting.current.delete(hold.id);
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
        session={session.state}
        onSignIn={onSignIn}
        onSignOut={() => void onSignOut()}
        signingOut={signingOut}
        adminOpen={adminOpen}
        onToggleAdmin={() => setAdminOpen((o) => !o)}
        purchasesOpen={purchasesOpen}
        onTogglePurchases={() => setPurchasesOpen((o) => !o)}
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
              onChanged={(drop) => live.upsert(drop)}
            />
          </div>
        )}
        {purchasesOpen && signedIn && (
          <div id="my-purchases">
            <MyPurchases
              key={purchasesReset}
              version={purchasesVersion}
              drops={live.drops}
              onClose={() => setPurchasesOpen(false)}
            />
          </div>
        )}
        <div className="layout">
          <section id="drops" className="drops" aria-labelledby="drops-title">
            <div className="section-head">
              <h1 id="drops-title">Drops</h1>
              <p className="section-sub">Pick a size and how many, and they are held for you while the timer runs. Stock moves live.</p>
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
                      place={lines.places[d.id]}
                      connection={live.connection}
                      busy={busy[d.id] ?? null}
                      bought={bought[d.id] ?? 0}
                      canReserve={signedIn !== null}
                      onReserve={(choice) => void onReserve(d, choice)}
                      onPurchase={() => hold && void onPurchase(d, hold)}
                      onRelease={() => hold && void onRelease(d, hold)}
                      onJoin={(choice) => void onJoin(d, choice)}
                      onLeave={() => void onLeave(d)}
                      entry={entries.entries[d.id]}
                      onEnter={(variantId) => void onEnter(d, variantId)}
                      onWithdraw={() => void onWithdraw(d)}
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
