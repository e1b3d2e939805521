/**
 * Every device event, told once to its three readers: the lifecycle summary (INFO as counts per
 * interval, issue 13 §9; each device's line stays at debug), the device event log (persistence.ts)
 * and the watchers of {@link Fleet.watchEvents}. A watcher that throws is reported; the others
 * still hear. The event object for watchers is made only while there are any.
 */

import type { Runtime } from '../../runtime/runtime.js';
import type { Store } from '../../store/store.js';
import { createLifecycleSummary } from '../lifecycle-summary.js';
import type { Entry, FleetContext } from './context.js';
import { createEventWriter } from './persistence.js';
import type { Fleet, FleetEvent } from './types.js';

export interface EventFeed {
  readonly logEvent: FleetContext['logEvent'];
  readonly watchEvents: Fleet['watchEvents'];
  /** The event log's write in progress, if any. */
  pending(): Promise<void> | undefined;
  /** Logs the summary's last counts and disarms its timer. */
  stop(): void;
}

export function createEventFeed(
  runtime: Runtime,
  store: Store,
  entries: ReadonlyMap<string, Entry>,
): EventFeed {
  const events = createEventWriter(runtime, store);
  const eventWatchers = new Set<(event: FleetEvent) => void>();
  const summary = createLifecycleSummary({
    runtime,
    onlineNow: () => {
      let n = 0;
      for (const e of entries.values()) if (e.link.up) n++;
      return n;
    },
    devicesNow: () => entries.size,
  });

  return {
    logEvent: (kind, deviceId, data) => {
      summary.note(kind, deviceId, data);
      events.logEvent(kind, deviceId, data);
      if (eventWatchers.size > 0) {
        const event: FleetEvent = { kind, deviceId, at: runtime.clock.wallNow(), data };
        for (const w of eventWatchers)
          try {
            w(event);
          } catch (error) {
            runtime.report(`fleet: an event watcher threw on ${kind}`, error);
          }
      }
    },
    watchEvents(listener) {
      eventWatchers.add(listener);
      return () => eventWatchers.delete(listener);
    },
    pending: () => events.pending(),
    stop: () => summary.stop(),
  };
}
