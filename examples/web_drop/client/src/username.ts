// The same rule the server applies: trimmed, 3 to 50 of A-Z a-z 0-9 _.

/** Shortest accepted username. */
export const USERNAME_MIN = 3;
/** Longest accepted username. */
export const USERNAME_MAX = 50;

/** Why `raw` is not a valid username, or null when it is. */
export function usernameProblem(raw: string): string | null {
  const name = raw.trim();
  if (name.length === 0) return 'Enter a username to reserve.';
  if (name.length < USERNAME_MIN || name.length > USERNAME_MAX)
    return `Use ${USERNAME_MIN} to ${USERNAME_MAX} characters.`;
  if (!/^[A-Za-z0-9_]+$/.test(name)) return 'Use only letters, digits and underscores.';
  return null;
}
