/**
 * An inline "are you sure?" for a destructive admin action: the question,
 * the action's own button and a way back. Shown in place of the button that
 * asked, so nothing else on the page moves.
 */
export function Confirm({
  question,
  confirmLabel,
  busy,
  onConfirm,
  onCancel,
}: {
  question: string;
  confirmLabel: string;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  return (
    <div className="confirm" role="group" aria-label={question}>
      <p className="confirm-question">{question}</p>
      <div className="confirm-actions">
        <button type="button" className="btn btn-danger btn-small" disabled={busy} onClick={onConfirm}>
          {busy ? 'Working…' : confirmLabel}
        </button>
        <button type="button" className="btn btn-ghost btn-small" disabled={busy} onClick={onCancel}>
          Keep it
        </button>
      </div>
    </div>
  );
}
