/**
 * The link hub's table: one {@link Session} per device heard from, the observers of every accepted
 * message (live views) and the count of them, and a device's counters as {@link DeviceLinkStats}.
 *
 * @example
 * const table = createHubSessions(runtime);
 * const s = table.session('pump-7'); // made when missing
 * const stop = table.observe((id, m) => console.log(id, m.type));
 * table.notify('pump-7', telemetry); // counted in table.received, told to every observer
 * linkStatsOf('pump-7', s); // { id: 'pump-7', online: false, via: null, received: 0, … }
 */
import type { Runtime } from '../runtime/runtime.js';
import type { Session } from './link-session.js';
import { newSession } from './link-session.js';
import type { Message } from './protocol.js';

export interface DeviceLinkStats {
  readonly id: string;
  readonly online: boolean;
  readonly via: string | null;
  readonly boot: number | null;
  readonly received: number;
  readonly duplicates: number;
  readonly gaps: number;
  readonly errors: Readonly<Record<string, number>>;
}

export type MessageObserver = (deviceId: string, message: Message) => void;

export interface HubSessions {
  /** Every device's session, by id. */
  readonly sessions: Map<string, Session>;
  /** The device's session, made when missing. */
  session(id: string): Session;
  /** An accepted message (after dedupe): counted, and told to every observer. */
  notify(id: string, m: Message): void;
  /** The returned function stops it. */
  observe(listener: MessageObserver): () => void;
  /** Messages accepted since the start, all devices together. */
  readonly received: number;
}

export function createHubSessions(runtime: Runtime): HubSessions {
  const sessions = new Map<string, Session>();
  const observers = new Set<MessageObserver>();
  let totalReceived = 0;
  const notify = (id: string, m: Message) => {
    totalReceived++;
    // Per accepted message: with nobody observing (the usual case) no iterator is made.
    if (observers.size === 0) return;
    for (const o of observers) {
      try {
        o(id, m);
      } catch (error) {
        runtime.report('link hub: an observer threw', error);
      }
    }
  };
  const session = (id: string): Session => {
    let s = sessions.get(id);
    if (!s) {
      s = newSession();
      sessions.set(id, s);
    }
    return s;
  };
  return {
    sessions,
    session,
    notify,
    observe(listener) {
      observers.add(listener);
      return () => observers.delete(listener);
    },
    get received() {
      return totalReceived;
    },
  };
}

/** A device's link counters as the hub shows them (a copy: later messages do not change it). */
export function linkStatsOf(id: string, s: Session): DeviceLinkStats {
  return {
    id,
    online: s.online,
    via: s.link?.via ?? null,
    boot: s.hello?.boot ?? null,
    received: s.received,
    duplicates: s.duplicates,
    gaps: s.gaps,
    errors: { ...s.errors },
  };
}
