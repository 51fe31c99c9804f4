import { useId } from 'react';
import type { Connection } from '../useLiveDrops';
import { usernameProblem } from '../username';

/** The top bar: brand, connection state, the username field and the admin toggle. */
export function Header({
  connection,
  username,
  onUsername,
  adminOpen,
  onToggleAdmin,
}: {
  connection: Connection;
  username: string;
  onUsername: (value: string) => void;
  adminOpen: boolean;
  onToggleAdmin: () => void;
}) {
  const id = useId();
  const problem = usernameProblem(username);
  // An empty field is a prompt, not a mistake.
  const showProblem = problem !== null && username.trim() !== '';
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
        <div className="user">
          <label htmlFor={`${id}-username`} className="user-label">
            Your username
          </label>
          <input
            id={`${id}-username`}
            className="user-input"
            type="text"
            autoComplete="username"
            spellCheck={false}
            maxLength={60}
            placeholder="e.g. sneakerfan_42"
            value={username}
            aria-invalid={showProblem ? true : undefined}
            aria-describedby={`${id}-username-help`}
            onChange={(e) => onUsername(e.target.value)}
          />
          <p id={`${id}-username-help`} className={showProblem ? 'user-help user-help-error' : 'user-help'}>
            {showProblem ? problem : '3–50 letters, digits or _'}
          </p>
        </div>
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
