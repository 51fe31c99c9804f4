import { useCallback, useEffect, useRef, useState } from 'react';

/** How a toast is coloured and announced. */
export type ToastKind = 'success' | 'error' | 'info';

/** One message in the corner. */
export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  body?: string;
}

const MAX_VISIBLE = 4;
const LIFETIME_MS: Record<ToastKind, number> = { success: 5000, info: 5000, error: 8000 };

/** A queue of toasts that dismiss themselves. */
export function useToasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const nextId = useRef(1);
  const timers = useRef(new Map<number, ReturnType<typeof setTimeout>>());

  const dismiss = useCallback((id: number) => {
    setToasts((prev) => prev.filter((t) => t.id !== id));
    const t = timers.current.get(id);
    if (t) clearTimeout(t);
    timers.current.delete(id);
  }, []);

  const push = useCallback(
    (kind: ToastKind, title: string, body?: string) => {
      const id = nextId.current++;
      setToasts((prev) => [...prev, { id, kind, title, body }].slice(-MAX_VISIBLE));
      timers.current.set(
        id,
        setTimeout(() => dismiss(id), LIFETIME_MS[kind]),
      );
    },
    [dismiss],
  );

  useEffect(() => {
    const all = timers.current;
    return () => all.forEach((t) => clearTimeout(t));
  }, []);

  return { toasts, push, dismiss };
}

/** The toast stack; errors are announced assertively, the rest politely. */
export function Toasts({ toasts, onDismiss }: { toasts: Toast[]; onDismiss: (id: number) => void }) {
  return (
    <div className="toasts" aria-label="Notifications">
      <div role="status" aria-live="polite" className="toast-region">
        {toasts
          .filter((t) => t.kind !== 'error')
          .map((t) => (
            <ToastView key={t.id} toast={t} onDismiss={onDismiss} />
          ))}
      </div>
      <div role="alert" aria-live="assertive" className="toast-region">
        {toasts
          .filter((t) => t.kind === 'error')
          .map((t) => (
            <ToastView key={t.id} toast={t} onDismiss={onDismiss} />
          ))}
      </div>
    </div>
  );
}

function ToastView({ toast, onDismiss }: { toast: Toast; onDismiss: (id: number) => void }) {
  return (
    <div className={`toast toast-${toast.kind}`} data-testid={`toast-${toast.kind}`}>
      <div className="toast-text">
        <strong>{toast.title}</strong>
        {toast.body && <span>{toast.body}</span>}
      </div>
      <button type="button" className="toast-close" aria-label="Dismiss notification" onClick={() => onDismiss(toast.id)}>
        ×
      </button>
    </div>
  );
}
