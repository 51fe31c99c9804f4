import { useId, useRef, useState, type FormEvent } from 'react';
import { ApiError } from '../api';
import { plainError } from '../errors';
import type { SessionState } from '../useSession';
import type { Connection } from '../useLiveDrops';
import { lastUsername, rememberUsername, usernameProblem } from '../username';

/**
 * The top bar: brand, connection state, sign-in (or who is signed in, with
 * their purchases) and the admin toggle.
 */
export function Header({
  connection,
  session,
  onSignIn,
  onSignOut,
  signingOut,
  adminOpen,
  onToggleAdmin,
  purchasesOpen,
  onTogglePurchases,
}: {
  connection: Connection;
  session: SessionState;
  onSignIn: (username: string) => Promise<void>;
  onSignOut: () => void;
  signingOut: boolean;
  adminOpen: boolean;
  onToggleAdmin: () => void;
  purchasesOpen: boolean;
  onTogglePurchases: () => void;
}) {
  return (
    <header className="topbar">
      <div className="topbar-inner">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-name">dropkit</span>
          <span className="brand-sub">live drops</span>
        </div>
        <p className={`conn conn-${connection}`} role="status" data-testid="connection">
          <span className="conn-dot" aria-hidden="true" />
          {connection === 'live' ? 'Live' : connection === 'connecting' ? 'Connecting…' : 'Offline, reconnecting…'}
        </p>
        {session.status === 'signedIn' ? (
          <div className="user user-signed-in">
            <p className="user-who">
              <span className="user-who-label">Signed in as</span>{' '}
              <strong className="user-name" data-testid="signed-in-name">
                {session.buyer.displayName}
              </strong>
            </p>
            <button
              type="button"
              className={`btn btn-small ${purchasesOpen ? 'btn-dark-active' : 'btn-dark'}`}
              aria-expanded={purchasesOpen}
              aria-controls="my-purchases"
              onClick={onTogglePurchases}
            >
              My purchases
            </button>
            <button type="button" className="btn btn-small btn-dark" onClick={onSignOut} disabled={signingOut}>
              {signingOut ? 'Signing out…' : 'Sign out'}
            </button>
          </div>
        ) : session.status === 'signedOut' ? (
          <SignInForm ended={session.ended} onSignIn={onSignIn} />
        ) : (
          <p className="user user-checking" role="status">
            Checking sign-in…
          </p>
        )}
        <button
          type="button"
          className={`btn btn-small ${adminOpen ? 'btn-dark-active' : 'btn-dark'}`}
          aria-expanded={adminOpen}
          aria-controls="admin-panel"
          onClick={onToggleAdmin}
        >
          Admin
        </button>
      </div>
    </header>
  );
}

// The server's sign-in refusals, in the form's own words where the general
// text would mislead (its FORBIDDEN text is about the admin token).
function signInError(e: unknown): string {
  if (!(e instanceof ApiError)) return plainError('NETWORK');
  if (e.code === 'FORBIDDEN') return 'The server does not accept sign-ins from this page’s address.';
  return plainError(e.code, e.message);
}

/** The username field: checked as the server checks it, then `POST /api/session`. */
function SignInForm({ ended, onSignIn }: { ended: boolean; onSignIn: (username: string) => Promise<void> }) {
  const id = useId();
  const input = useRef<HTMLInputElement>(null);
  const [value, setValue] = useState(lastUsername);
  const [submitted, setSubmitted] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const problem = usernameProblem(value);
  // An empty field is a prompt, not a mistake, until the user tries to sign in.
  const showProblem = problem !== null && (value.trim() !== '' || submitted);
  const help = showProblem
    ? problem
    : (serverError ?? (ended ? 'Your sign-in has ended. Sign in again to reserve.' : '3–50 letters, digits or _'));
  const isError = showProblem || serverError !== null || ended;

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setSubmitted(true);
    if (problem !== null) {
      input.current?.focus();
      return;
    }
    const name = value.trim();
    setBusy(true);
    setServerError(null);
    try {
      await onSignIn(name);
      rememberUsername(name);
    } catch (err) {
      setServerError(signInError(err));
      setBusy(false);
      input.current?.focus();
    }
  };

  return (
    <form className="user user-form" onSubmit={(e) => void onSubmit(e)} noValidate>
      <label htmlFor={`${id}-username`} className="user-label">
        Your username
      </label>
      <input
        ref={input}
        id={`${id}-username`}
        className="user-input"
        type="text"
        autoComplete="username"
        spellCheck={false}
        maxLength={60}
        placeholder="e.g. sneakerfan_42"
        value={value}
        aria-invalid={showProblem || serverError !== null ? true : undefined}
        aria-describedby={`${id}-username-help`}
        onChange={(e) => {
          setValue(e.target.value);
          setServerError(null);
        }}
      />
      <button type="submit" className="btn btn-small btn-dark user-submit" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </button>
      <p
        id={`${id}-username-help`}
        className={isError ? 'user-help user-help-error' : 'user-help'}
        data-testid="username-help"
      >
        {help}
      </p>
    </form>
  );
}
