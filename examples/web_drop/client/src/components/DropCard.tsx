import type { LiveDrop, Connection } from '../useLiveDrops';
import type { Hold } from '../useHolds';
import { formatCountdown, formatPrice, formatWhen } from '../format';
import { useServerNow } from '../useNow';
import { StockBar } from './StockBar';
import { HoldPanel } from './HoldPanel';
import { RecentBuyers } from './RecentBuyers';

/** What a card is busy with while a request is in flight. */
export type Busy = 'reserve' | 'purchase' | 'release' | null;

/** One drop: price, live stock, the user's hold or a Reserve button, and recent buyers. */
export function DropCard({
  drop,
  hold,
  connection,
  busy,
  bought,
  canReserve,
  onReserve,
  onPurchase,
  onRelease,
}: {
  drop: LiveDrop;
  hold: Hold | undefined;
  connection: Connection;
  busy: Busy;
  bought: number;
  canReserve: boolean;
  onReserve: () => void;
  onPurchase: () => void;
  onRelease: () => void;
}) {
  const now = useServerNow(1000);
  const startsAt = drop.startsAt ? Date.parse(drop.startsAt) : NaN;
  const upcoming = !Number.isNaN(startsAt) && startsAt > now;
  const soldOut = drop.availableStock <= 0;
  const titleId = `drop-${drop.id}`;

  let status: { label: string; tone: string };
  if (upcoming) status = { label: `Opens in ${formatCountdown(startsAt - now)}`, tone: 'upcoming' };
  else if (soldOut && !hold) status = { label: 'Sold out', tone: 'soldout' };
  else status = { label: 'On sale', tone: 'onsale' };

  let reserveLabel = 'Reserve';
  if (busy === 'reserve') reserveLabel = 'Reserving…';
  else if (upcoming) reserveLabel = 'Not started yet';
  else if (soldOut) reserveLabel = 'Sold out';

  let hint = `Held for ${drop.holdSeconds} s once reserved.`;
  if (upcoming && drop.startsAt) hint = `Opens ${formatWhen(drop.startsAt)}.`;
  else if (soldOut) hint = 'Every unit is held or sold. Held units return if not bought in time.';
  else if (!canReserve) hint = 'Sign in above to reserve.';
  else if (bought > 0) hint = `You bought ${bought === 1 ? 'one' : bought}. Reserve another if you like.`;

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
      />

      <div className="card-action">
        {hold ? (
          <HoldPanel
            hold={hold}
            holdSeconds={drop.holdSeconds}
            dropName={drop.name}
            busy={busy}
            onPurchase={onPurchase}
            onRelease={onRelease}
          />
        ) : (
          <div className="reserve">
            <button
              type="button"
              className="btn btn-primary btn-block"
              onClick={onReserve}
              disabled={busy !== null || upcoming || soldOut || !canReserve}
              aria-label={`${reserveLabel}: ${drop.name}`}
            >
              {reserveLabel}
            </button>
            <p className="reserve-hint" data-testid="hint">
              {hint}
            </p>
          </div>
        )}
      </div>

      <RecentBuyers buyers={drop.topPurchasers ?? []} now={now} dropName={drop.name} />
    </article>
  );
}
