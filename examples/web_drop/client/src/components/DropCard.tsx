import { useId, useState } from 'react';
import type { LiveDrop, Connection } from '../useLiveDrops';
import type { Hold } from '../useHolds';
import { lineLength, lineLengthText, type Place } from '../waitlist';
import { formatCountdown, formatPrice, formatWhen } from '../format';
import {
  allowance,
  chosenSize,
  clampQuantity,
  limitText,
  maxQuantity,
  ownedText,
  showsQuantity,
  showsSizePicker,
  sizeOptions,
  totalPrice,
} from '../inventory';
import { useServerNow } from '../useNow';
import { StockBar } from './StockBar';
import { HoldPanel } from './HoldPanel';
import { RecentBuyers } from './RecentBuyers';
import { SizePicker } from './SizePicker';
import { WaitlistPanel } from './WaitlistPanel';
import { DrawCountdown, DrawResult, EntryPanel } from './DrawPanel';
import { DrawCheckView, SeedHash, useDrawInfo } from './CheckDraw';
import type { Entry } from '../api';
import { drawPhase, drawView, isDraw, untilDraw } from '../draws';

/** What a card is busy with while a request is in flight. */
export type Busy = 'reserve' | 'purchase' | 'release' | 'join' | 'leave' | 'enter' | 'withdraw' | null;

/** What the buyer asks to reserve, or to wait for: a size (when the drop has sizes) and a quantity. */
export interface ReserveChoice {
  variantId: string | undefined;
  quantity: number;
}

/**
 * One drop: price, live stock, the size picker and quantity, the user's hold,
 * their place in a waiting line, or a Reserve button (Join the waiting list
 * on a sold-out size of a drop with a line), and recent buyers.
 *
 * A draw drop, before its draw, offers Enter the draw (with the chosen size)
 * and the draw's countdown instead, then the buyer's entry with Withdraw;
 * after it, their result above the hold or place it gave them. It shows
 * the committed seed hash, and Check this draw once the draw is out.
 */
export function DropCard({
  drop,
  hold,
  place,
  connection,
  busy,
  bought,
  canReserve,
  onReserve,
  onPurchase,
  onRelease,
  onJoin,
  onLeave,
  entry,
  onEnter,
  onWithdraw,
}: {
  drop: LiveDrop;
  hold: Hold | undefined;
  /** The buyer's place in a line of this drop. */
  place: Place | undefined;
  connection: Connection;
  busy: Busy;
  /** Units the signed-in buyer has bought of this drop (not cancelled). */
  bought: number;
  canReserve: boolean;
  onReserve: (choice: ReserveChoice) => void;
  onPurchase: () => void;
  onRelease: () => void;
  onJoin: (choice: ReserveChoice) => void;
  onLeave: () => void;
  /** The buyer's entry to this drop's draw. */
  entry?: Entry | undefined;
  onEnter?: (variantId: string | undefined) => void;
  onWithdraw?: () => void;
}) {
  const now = useServerNow(1000);
  const uid = useId();
  const [sizeChoice, setSizeChoice] = useState<string | null>(null);
  const [quantityChoice, setQuantityChoice] = useState(1);

  const startsAt = drop.startsAt ? Date.parse(drop.startsAt) : NaN;
  const upcoming = !Number.isNaN(startsAt) && startsAt > now;
  const soldOut = drop.availableStock <= 0;
  const paused = drop.paused;
  const maxPerBuyer = drop.maxPerBuyer;
  const titleId = `drop-${drop.id}`;

  const picker = showsSizePicker(drop);
  const size = chosenSize(drop, sizeChoice);
  const sizeFree = size ? Math.max(0, size.availableStock) : Math.max(0, drop.availableStock);
  const limitReached = canReserve && limitText(maxPerBuyer, bought) !== null;
  // A sold-out size of a drop with a waiting line offers its line instead
  // of a dead button; waiting is not bounded by the free units.
  const joining = drop.waitlist === true && !upcoming && !paused && sizeFree <= 0;
  const waiting = size ? lineLength(size) : 0;
  const maxQty = joining ? allowance(maxPerBuyer, bought) : maxQuantity(maxPerBuyer, bought, sizeFree);
  const quantity = clampQuantity(quantityChoice, maxQty);
  const heldSize = hold ? drop.variants.find((v) => v.id === hold.variantId) : undefined;
  const placeSize = place ? drop.variants.find((v) => v.id === place.variantId) : undefined;

  const draw = isDraw(drop);
  const phase = drawPhase(drop, now);
  const view = drawView(phase, entry, hold ? { id: hold.id, offered: hold.offered } : undefined, place);
  const drawInfo = useDrawInfo(drop.id, drop.drawnAt, draw);
  const [checking, setChecking] = useState(false);
  const toDraw = untilDraw(drop, now);
  const entrySize = entry ? drop.variants.find((v) => v.id === entry.variantId) : undefined;
  // Before the draw, the action is entering it; the size picker still picks.
  const entering = view.kind === 'enter';

  let status: { label: string; tone: string };
  if (upcoming) status = { label: `Opens in ${formatCountdown(startsAt - now)}`, tone: 'upcoming' };
  else if (phase === 'open' && paused) status = { label: 'Paused', tone: 'paused' };
  else if (phase === 'open') status = { label: `Draw in ${formatCountdown(toDraw ?? 0)}`, tone: 'draw' };
  else if (phase === 'drawing') status = { label: 'Drawing…', tone: 'draw' };
  else if (paused) status = { label: 'Paused', tone: 'paused' };
  else if (soldOut && !hold) status = { label: 'Sold out', tone: 'soldout' };
  else status = { label: 'On sale', tone: 'onsale' };

  let reserveLabel = 'Reserve';
  if (busy === 'enter') reserveLabel = 'Entering…';
  else if (entering && paused) reserveLabel = 'Paused';
  else if (entering && limitReached) reserveLabel = 'Limit reached';
  else if (entering) reserveLabel = 'Enter the draw';
  else if (busy === 'reserve') reserveLabel = 'Reserving…';
  else if (busy === 'join') reserveLabel = 'Joining…';
  else if (upcoming) reserveLabel = 'Not started yet';
  else if (paused) reserveLabel = 'Paused';
  // Joining is pointless at the limit: the server would refuse it.
  else if (joining && !limitReached) reserveLabel = 'Join the waiting list';
  else if (soldOut) reserveLabel = 'Sold out';
  else if (limitReached) reserveLabel = 'Limit reached';
  else if (picker && sizeFree <= 0) reserveLabel = 'Sold out';

  let hint = `Held for ${drop.holdSeconds} s once reserved.`;
  if (upcoming && drop.startsAt && draw) hint = `Sold by a draw: entries open ${formatWhen(drop.startsAt)}.`;
  else if (upcoming && drop.startsAt) hint = `Opens ${formatWhen(drop.startsAt)}.`;
  else if (entering && paused) hint = 'Paused by the shop: entering is off until it resumes.';
  else if (entering && !canReserve) hint = 'Sign in above to enter the draw.';
  else if (entering && limitReached) hint = limitText(maxPerBuyer, bought) ?? hint;
  else if (entering)
    hint = `One entry per buyer, for one unit. Winners are drawn at random when the countdown ends and get a ${drop.holdSeconds} s hold.`;
  else if (paused) hint = 'Paused by the shop: reserving is off until it resumes. Holds already made can still be bought.';
  else if (joining && limitReached) hint = limitText(maxPerBuyer, bought) ?? hint;
  else if (joining)
    hint =
      (waiting > 0 ? `Sold out right now; ${lineLengthText(waiting).toLowerCase()}. ` : 'Sold out right now. ') +
      (!canReserve
        ? 'Sign in above to join the line.'
        : waiting > 0
          ? 'Join to be next after them.'
          : 'Join the line and a freed unit is held for you.');
  else if (soldOut) hint = 'Every unit is held or sold. Held units return if not bought in time.';
  else if (!canReserve) hint = 'Sign in above to reserve.';
  else if (limitReached) hint = limitText(maxPerBuyer, bought) ?? hint;
  else if (quantity > 1)
    hint = `${quantity} × ${formatPrice(drop.price)} = ${formatPrice(totalPrice(drop.price, quantity))}, held for ${drop.holdSeconds} s.`;
  else if (bought > 0) hint = ownedText(maxPerBuyer, bought) ?? hint;

  const cannotReserve = entering
    ? busy !== null || !canReserve || paused || limitReached
    : joining
    ? busy !== null || !canReserve || limitReached || maxQty <= 0
    : busy !== null || upcoming || paused || soldOut || !canReserve || limitReached || maxQty <= 0;

  return (
    <article className={`card card-${status.tone}`} aria-labelledby={titleId} data-drop-id={drop.id}>
      <header className="card-head">
        <div className="card-title">
          <h2 id={titleId}>{drop.name}</h2>
          <p className="card-price">{formatPrice(drop.price)}</p>
        </div>
        <div className="card-badges">
          <span
            className={`badge badge-${connection === 'live' ? 'live' : 'offline'}`}
            data-testid="live-badge"
          >
            {connection === 'live' ? 'Live' : connection === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </span>
          <span className={`chip chip-${status.tone}`} data-testid="status">
            {status.label}
          </span>
        </div>
      </header>

      <StockBar
        total={drop.totalStock}
        available={drop.availableStock}
        reserved={drop.reservedStock}
        sold={drop.soldStock}
        waiting={drop.waitlist === true ? drop.variants.reduce((n, v) => n + lineLength(v), 0) : null}
      />

      {draw && (phase === 'open' || phase === 'upcoming') && drop.drawAt && toDraw !== null && (
        <DrawCountdown left={toDraw} drawAt={drop.drawAt} dropName={drop.name} />
      )}

      <div className="card-action">
        <DrawResult view={view} />
        {hold ? (
          <HoldPanel
            hold={hold}
            holdSeconds={drop.holdSeconds}
            dropName={drop.name}
            sizeName={picker ? (heldSize?.name ?? null) : null}
            price={drop.price}
            busy={busy}
            onPurchase={onPurchase}
            onRelease={onRelease}
            wonDraw={view.kind === 'won' && view.held}
          />
        ) : place ? (
          <WaitlistPanel
            place={place}
            dropName={drop.name}
            sizeName={picker ? (placeSize?.name ?? null) : null}
            lineLength={placeSize ? lineLength(placeSize) : 0}
            busy={busy !== null}
            onLeave={onLeave}
          />
        ) : (view.kind === 'entered' || view.kind === 'closed') && view.entry ? (
          <EntryPanel
            entry={view.entry}
            dropName={drop.name}
            sizeName={picker ? (entrySize?.name ?? null) : null}
            open={view.kind === 'entered'}
            busy={busy !== null}
            onWithdraw={() => onWithdraw?.()}
          />
        ) : view.kind === 'closed' ? (
          <p className="draw-closed" data-testid="hint">
            Entries are closed: the draw is happening now.
          </p>
        ) : (
          <div className="reserve">
            {(picker || (showsQuantity(maxPerBuyer) && !entering)) && (
              <div className="choose">
                {picker && (
                  <SizePicker
                    dropName={drop.name}
                    options={sizeOptions(drop)}
                    value={size?.id ?? null}
                    disabled={busy !== null}
                    onChange={setSizeChoice}
                  />
                )}
                {showsQuantity(maxPerBuyer) && !entering && (
                  <div className="qty">
                    <label htmlFor={`${uid}-qty`} className="qty-label">
                      Quantity
                    </label>
                    <select
                      id={`${uid}-qty`}
                      className="qty-select"
                      value={quantity}
                      disabled={cannotReserve || maxQty <= 1}
                      aria-label={`Quantity of ${drop.name}`}
                      onChange={(e) => setQuantityChoice(Number(e.target.value))}
                    >
                      {Array.from({ length: Math.max(1, maxQty) }, (_, i) => i + 1).map((n) => (
                        <option key={n} value={n}>
                          {n}
                        </option>
                      ))}
                    </select>
                  </div>
                )}
              </div>
            )}
            <button
              type="button"
              className="btn btn-primary btn-block"
              onClick={() =>
                entering ? onEnter?.(size?.id) : (joining ? onJoin : onReserve)({ variantId: size?.id, quantity })
              }
              disabled={cannotReserve}
              aria-label={`${reserveLabel}: ${drop.name}`}
            >
              {reserveLabel}
            </button>
            <p className={`reserve-hint${limitReached ? ' reserve-limit' : ''}`} data-testid="hint">
              {hint}
            </p>
          </div>
        )}
      </div>

      {draw && (drawInfo.info || drawInfo.error) && (
        <div className="draw-facts">
          {drawInfo.info ? <SeedHash seedHash={drawInfo.info.seedHash} /> : <p className="draw-seed">{drawInfo.error}</p>}
          {phase === 'drawn' && !checking && (
            <button
              type="button"
              className="btn btn-ghost btn-small"
              onClick={() => setChecking(true)}
              aria-label={`Check this draw: ${drop.name}`}
            >
              Check this draw
            </button>
          )}
        </div>
      )}
      {draw && checking && (
        <DrawCheckView
          dropId={drop.id}
          dropName={drop.name}
          variants={drop.variants}
          shownSeedHash={drawInfo.shownBefore}
          receipt={entry?.receipt ?? null}
          onClose={() => setChecking(false)}
        />
      )}

      <RecentBuyers buyers={drop.topPurchasers ?? []} now={now} dropName={drop.name} />
    </article>
  );
}
