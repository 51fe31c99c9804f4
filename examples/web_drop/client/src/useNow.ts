import { useEffect, useState } from 'react';
import { serverNow } from './clock';

/** The server's current time, refreshed every `intervalMs` while mounted. */
export function useServerNow(intervalMs: number): number {
  const [now, setNow] = useState(serverNow);
  useEffect(() => {
    const t = setInterval(() => setNow(serverNow()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}
