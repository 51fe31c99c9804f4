import type { Hold } from '../useHolds';
import type { Busy } from './DropCard';
import { serverOffset } from '../clock';
import { formatCountdown, formatPrice, formatTime } from '../format';
import { holdLabel, totalPrice } from '../inventory';
import { useServerNow } from '../useNow';

/**
 * The countdown of a hold with what it holds (size × quantity), its total,
 * and its Complete Purchase and Release buttons. A hold offered from the
 * waiting line or won in a draw says so, and until when it is the buyer's.
 */
export function HoldPanel({
  hold,
  holdSeconds,
  dropName,
  sizeName,
  price,
  busy,
  onPurchase,
  onRelease,
  wonDraw = false,
}: {
  hold: Hold;
  holdSeconds: number;
  dropName: string;
  /** The held size's name; null for a drop without a size choice. */
  sizeName: string | null;
  /** The drop's unit price (decimal string). */
  price: string;
  busy: Busy;
  onPurchase: () => void;
  onRelease: () => void;
  /** The hold is the buyer's win in the drop's draw (an offered hold too). */
  wonDraw?: boolean;
}) {
  const now = useServerNow(200);
  const span = Math.max(1, holdSeconds * 1000);
  // The clock estimate can lag the server by a message's queueing time;
  // a hold never has more than its full window left, so never show more.
  const left = Math.max(0, Math.min(span, hold.expiresAt - now));
  const fraction = Math.min(1, left / span);
  const urgent = left <= Math.min(10_000, span / 3);
  const seconds = Math.ceil(left / 1000);
  const what = holdLabel(sizeName, hold.quantity);
  return (
    <div className={`hold${urgent ? ' hold-urgent' : ''}`} data-testid="hold" data-offered={hold.offered}>
      <div className="hold-head">
        <span className="hold-label">{wonDraw ? 'Won in the draw' : hold.offered ? 'Offered from the line' : 'Held for you'}</span>
        <span
          className="hold-countdown"
          data-testid="countdown"
          data-seconds={seconds}
          role="timer"
          aria-label={`${seconds} seconds left to buy ${dropName}`}
        >
          {formatCountdown(left)}
        </span>
      </div>
      {hold.offered && (
        <p className="hold-offered" data-testid="offered">
          {/* expiresAt is on the server's clock; the time is shown on the browser's. */}
          {wonDraw ? 'You won the draw' : 'A unit freed up'}: it is yours until {formatTime(hold.expiresAt - serverOffset())}.
        </p>
      )}
      <p className="hold-what" data-testid="hold-what">
        <span className="hold-items">{what || '1 unit'}</span>
        <span className="hold-total" data-testid="hold-total">
          Total {formatPrice(totalPrice(price, hold.quantity))}
        </span>
      </p>
      <div className="hold-track" aria-hidden="true">
        <span className="hold-fill" style={{ transform: `scaleX(${fraction})` }} />
      </div>
      <div className="hold-actions">
        <button
          type="button"
          className="btn btn-primary"
          onClick={onPurchase}
          disabled={busy !== null || left <= 0}
          aria-label={`Complete purchase of ${dropName}`}
        >
          {busy === 'purchase' ? 'Buying…' : 'Complete Purchase'}
        </button>
        <button
          type="button"
          className="btn btn-ghost"
          onClick={onRelease}
          disabled={busy !== null || left <= 0}
          aria-label={`Release hold on ${dropName}`}
        >
          {busy === 'release' ? 'Releasing…' : 'Release'}
        </button>
      </div>
    </div>
  );
}
