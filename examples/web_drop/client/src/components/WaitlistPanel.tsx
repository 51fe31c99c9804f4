import { holdLabel } from '../inventory';
import { lineLengthText, placeText, type Place } from '../waitlist';

/**
 * The buyer's place in a waiting line: their position (live), what they
 * wait for, how long the line is, and Leave the line. When a unit frees up
 * for them it becomes a hold, and the card shows the hold instead.
 */
export function WaitlistPanel({
  place,
  dropName,
  sizeName,
  lineLength,
  busy,
  onLeave,
}: {
  place: Place;
  dropName: string;
  /** The size waited for; null for a drop without a size choice. */
  sizeName: string | null;
  /** How many buyers wait in this size's line (the buyer included). */
  lineLength: number;
  busy: boolean;
  onLeave: () => void;
}) {
  const what = sizeName ? holdLabel(sizeName, place.quantity) : place.quantity === 1 ? '1 unit' : `${place.quantity} units`;
  // The line never reads shorter than the buyer's own position.
  const length = Math.max(lineLength, place.position ?? 1);
  return (
    <section className="waiting" aria-label={`Your place in line for ${dropName}`}>
      {/* Announced politely as it changes, so a screen reader hears the line move. */}
      <p className="waiting-place" data-testid="place" role="status" aria-live="polite">
        {placeText(place)}
      </p>
      <p className="waiting-what">
        <span className="waiting-items">Waiting for {what}</span>
        <span className="waiting-length" data-testid="line-length">
          {lineLengthText(length)}
        </span>
      </p>
      <p className="waiting-hint">When a unit frees up it is held for you, and you are told here at once.</p>
      <button
        type="button"
        className="btn btn-ghost btn-block"
        onClick={onLeave}
        disabled={busy}
        aria-label={`Leave the line for ${dropName}`}
      >
        {busy ? 'Leaving…' : 'Leave the line'}
      </button>
    </section>
  );
}
