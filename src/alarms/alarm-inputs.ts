/**
 * What the fleet tells the alarm rules (alarm-engine.ts): each telemetry batch, and each device's
 * facts (online, crash loop, drift, stuck, circuit open) whenever a lifecycle entry of the device
 * event log or a circuit breaker says they may have changed; and which devices a rule's scope
 * takes in (by id, kind and tag).
 *
 * Facts are posted only when they changed. The fleet logs only the start of drift and of being
 * stuck, so devices in either are read again on every tick ({@link AlarmInputs.rereadWatched}).
 *
 * @example
 * const inputs = createAlarmInputs({ fleet, clock, notify: (input) => manager.notify(input) });
 * inputs.seed();
 * const offs = inputs.subscribe(); // telemetry and facts flow to notify; call each off to stop
 */
import type { Fleet, FleetEvent } from '../devices/fleet.js';
import type { Clock } from '../runtime/clock.js';
import type { AlarmInput, DeviceFacts } from './evaluate.js';
import type { AlarmRule } from './rules.js';

export interface AlarmInputsOptions {
  readonly fleet: Fleet;
  readonly clock: Clock;
  /** Where inputs go: the alarm event manager, once it runs. */
  readonly notify: (input: AlarmInput) => void;
}

export interface AlarmInputs {
  /** Reads every device's facts, without posting them (at start, before the rules are installed). */
  seed(): void;
  /** The facts last posted (or seeded) per device: a rule just installed starts from these. */
  facts(): ReadonlyMap<string, DeviceFacts>;
  /** Whether a device is in the rule's scope. */
  scopeOf(rule: AlarmRule): (deviceId: string) => boolean;
  /** Reads the devices in drift or stuck again, posting what changed (on each tick). */
  rereadWatched(): void;
  /** Subscribes to the fleet; returns what unsubscribes. */
  subscribe(): (() => void)[];
}

/** Lifecycle entries after which a device's facts are read again. */
const FACT_EVENTS = new Set([
  'device.offline',
  'device.online',
  'device.failed',
  'device.restarted',
  'device.drift',
  'device.stuck',
  'device.state',
  'device.added',
  'device.spec',
  'device.updated',
  'device.edited',
]);

const sameFacts = (a: DeviceFacts | undefined, b: DeviceFacts) =>
  a !== undefined &&
  a.online === b.online &&
  a.crashLoop === b.crashLoop &&
  a.drift === b.drift &&
  a.stuck === b.stuck &&
  a.circuitOpen === b.circuitOpen;

export function createAlarmInputs(options: AlarmInputsOptions): AlarmInputs {
  const { fleet, clock, notify } = options;
  const meta = new Map<string, { kind: string; tags: readonly string[] } | null>();
  /** Devices with drift or stuck: their facts are read again on each tick (the fleet logs only the start). */
  const watched = new Set<string>();
  const lastFacts = new Map<string, DeviceFacts>();

  const metaOf = (id: string) => {
    let m = meta.get(id);
    if (m === undefined) {
      const d = fleet.device(id);
      m = d ? { kind: d.kind, tags: d.tags } : null;
      meta.set(id, m);
    }
    return m;
  };

  const factsOf = (id: string): DeviceFacts | undefined => {
    const d = fleet.device(id);
    if (!d) return undefined;
    return {
      online: d.link.up,
      crashLoop: d.failure?.code === 'crashLoop',
      drift: d.drift.length > 0,
      stuck: d.stuck !== undefined,
      circuitOpen: fleet.guards.breakerState(id) !== 'closed',
    };
  };

  const postFacts = (id: string) => {
    const f = factsOf(id);
    if (!f) return;
    if (f.drift || f.stuck) watched.add(id);
    else watched.delete(id);
    if (sameFacts(lastFacts.get(id), f)) return;
    lastFacts.set(id, f);
    notify({ type: 'facts', deviceId: id, atMs: clock.now(), facts: f });
  };

  const onFleetEvent = (e: FleetEvent) => {
    const id = e.deviceId;
    if (id === undefined) return;
    if (e.kind === 'device.removed') {
      meta.delete(id);
      lastFacts.delete(id);
      watched.delete(id);
      notify({ type: 'removed', deviceId: id, atMs: clock.now() });
      return;
    }
    if (!FACT_EVENTS.has(e.kind)) return;
    if (e.kind === 'device.added' || e.kind === 'device.updated' || e.kind === 'device.edited')
      meta.delete(id);
    postFacts(id);
  };

  return {
    seed() {
      for (const d of fleet.list()) {
        const f = factsOf(d.id);
        if (f) {
          lastFacts.set(d.id, f);
          if (f.drift || f.stuck) watched.add(d.id);
        }
      }
    },

    facts: () => lastFacts,

    scopeOf(rule) {
      const s = rule.scope;
      if (!s) return () => true;
      const ids = s.deviceIds ? new Set(s.deviceIds) : undefined;
      return (id: string) => {
        if (ids && !ids.has(id)) return false;
        if (s.kind === undefined && s.tag === undefined) return true;
        const m = metaOf(id);
        if (!m) return false;
        return (s.kind === undefined || m.kind === s.kind) && (s.tag === undefined || m.tags.includes(s.tag));
      };
    },

    rereadWatched() {
      for (const id of [...watched]) postFacts(id);
    },

    subscribe: () => [
      fleet.observe((activity) => {
        if (activity.type === 'telemetry')
          notify({
            type: 'telemetry',
            deviceId: activity.deviceId,
            atMs: clock.now(),
            values: activity.values,
          });
      }),
      fleet.watchEvents(onFleetEvent),
      fleet.guards.listen((id) => postFacts(id)),
    ],
  };
}
