import type { Activity } from '../useLiveDrops';
import { timeAgo } from '../format';
import { useServerNow } from '../useNow';

/** The latest purchases across all drops, newest first, updated live. */
export function ActivityFeed({ items }: { items: Activity[] }) {
  const now = useServerNow(1000);
  return (
    <aside className="activity" aria-labelledby="activity-title">
      <h2 id="activity-title">Live activity</h2>
      {items.length === 0 ? (
        <p className="activity-empty">Purchases show up here the moment they happen.</p>
      ) : (
        <ul className="activity-list" aria-live="polite">
          {items.map((a) => (
            <li key={a.key}>
              <span className="activity-what">
                <strong>{a.name}</strong> bought <span className="activity-drop">{a.dropName}</span>
              </span>
              <time dateTime={a.at}>{timeAgo(a.at, now)}</time>
            </li>
          ))}
        </ul>
      )}
    </aside>
  );
}
