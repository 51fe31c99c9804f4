import type { Entry } from '../api';
import { formatCountdown, formatTime } from '../format';
import { resultText, shortReceipt, type DrawView } from '../draws';
import { serverOffset } from '../clock';

/**
 * The draw's countdown: how long entries stay open. Shown on the card of a
 * draw drop before its draw, whether or not the buyer has entered.
 */
export function DrawCountdown({ left, drawAt, dropName }: { left: number; drawAt: string; dropName: string }) {
  const seconds = Math.ceil(left / 1000);
  return (
    <p className="draw-when">
      <span className="draw-when-label">Draw in</span>{' '}
      <span
        className="draw-countdown"
        data-testid="draw-countdown"
        data-seconds={seconds}
        role="timer"
        aria-label={`${seconds} seconds until the draw for ${dropName}`}
      >
        {formatCountdown(left)}
      </span>{' '}
      {/* drawAt is on the server's clock; the time is shown on the browser's. */}
      <span className="draw-when-at">at {formatTime(Date.parse(drawAt) - serverOffset())}</span>
    </p>
  );
}

/**
 * The buyer's entry before the result: "You're in the draw", for what, its
 * receipt (short; the whole one in its title and for the check), and
 * Withdraw while entries are open.
 */
export function EntryPanel({
  entry,
  dropName,
  sizeName,
  open,
  busy,
  onWithdraw,
}: {
  entry: Entry;
  dropName: string;
  /** The size entered for; null for a drop without a size choice. */
  sizeName: string | null;
  /** Entries still open: withdrawing is allowed. */
  open: boolean;
  busy: boolean;
  onWithdraw: () => void;
}) {
  return (
    <section className="entry" aria-label={`Your entry to the draw for ${dropName}`} data-testid="entry">
      <p className="entry-title" role="status" aria-live="polite">
        You’re in the draw
      </p>
      <p className="entry-what">
        <span>{sizeName ? `1 unit, size ${sizeName}` : '1 unit'}</span>
        <span className="entry-receipt">
          Receipt{' '}
          <code title={entry.receipt} data-testid="receipt" data-receipt={entry.receipt}>
            {shortReceipt(entry.receipt)}
          </code>
        </span>
      </p>
      <p className="entry-hint">
        {open
          ? 'Winners are drawn at random when the countdown ends; a win is held for you at once. The receipt is how you find your entry in the published draw.'
          : 'Entries are closed: the draw is happening now. Your result shows here.'}
      </p>
      {open && (
        <button
          type="button"
          className="btn btn-ghost btn-block"
          onClick={onWithdraw}
          disabled={busy}
          aria-label={`Withdraw from the draw for ${dropName}`}
        >
          {busy ? 'Withdrawing…' : 'Withdraw'}
        </button>
      )}
    </section>
  );
}

/**
 * The headline of the buyer's draw result above the card's action: won
 * (the hold shows below), waiting (the place shows below), lost, or being
 * read.
 */
export function DrawResult({ view }: { view: DrawView }) {
  const text = resultText(view);
  if (text === null) return null;
  const tone = view.kind === 'won' ? 'won' : view.kind === 'lost' ? 'lost' : 'waiting';
  let detail: string | null = null;
  if (view.kind === 'won' && !view.held) detail = 'Your win was held for you after the draw; that hold has ended.';
  else if (view.kind === 'lost') detail = 'Any unit nobody won is on open sale below.';
  else if (view.kind === 'waiting' && view.place === null) detail = 'Reading your place in line…';
  return (
    <div className={`draw-result draw-result-${tone}`} data-testid="draw-result" data-result={view.kind} role="status">
      <p className="draw-result-title">{text}</p>
      {detail && <p className="draw-result-detail">{detail}</p>}
    </div>
  );
}
