// The sign-in name: the same rule the server applies (trimmed, 3 to 50 of
// A-Z a-z 0-9 _), and the last name used, to fill the form in next time.

/** Shortest accepted username. */
export const USERNAME_MIN = 3;
/** Longest accepted username. */
export const USERNAME_MAX = 50;

/** Why `raw` is not a valid username, or null when it is. */
export function usernameProblem(raw: string): string | null {
  const name = raw.trim();
  if (name.length === 0) return 'Enter a username to sign in.';
  if (name.length < USERNAME_MIN || name.length > USERNAME_MAX)
    return `Use ${USERNAME_MIN} to ${USERNAME_MAX} characters.`;
  if (!/^[A-Za-z0-9_]+$/.test(name)) return 'Use only letters, digits and underscores.';
  return null;
}

// Only the name typed: it proves nothing (each sign-in is a new buyer), so it
// is safe to keep where scripts can read it, unlike the session token.
const LAST_NAME_KEY = 'dropkit.username';

/** The name last signed in with in this browser, or ''. */
export function lastUsername(): string {
  try {
    return localStorage.getItem(LAST_NAME_KEY) ?? '';
  } catch {
    return '';
  }
}

/** Remembers `name` to fill the sign-in form in next time. */
export function rememberUsername(name: string): void {
  try {
    localStorage.setItem(LAST_NAME_KEY, name);
  } catch {
    // Not remembering the name only means typing it again.
  }
}
