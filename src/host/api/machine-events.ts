/**
 * The last events each device's machine processed, for the inspector: fed by the runtime's
 * `machine.event`s (payload, state before and after), kept by the API since it started.
 *
 * Memory is bounded whatever the fleet's size: at most {@link EVENTS_KEPT} events for each of the
 * {@link DEVICES_KEPT} devices most recently active or inspected (the least recent one's history
 * goes first), each payload as JSON text cut at {@link PAYLOAD_CHARS_KEPT} characters. At 10,000
 * devices most are quiet; the ones an operator looks at are the busy ones, or those asked about.
 *
 * @example
 * const history = new MachineEventHistory(() => Date.now());
 * runtime.events.subscribe((e) => { if (e.type === 'machine.event') history.record(e.name, e.at, e.event, e.from, e.to); });
 * history.of('pump-7'); // { events: [{ type: 'HELLO', payload: { firmware: '2.1.0' }, from: 'connecting', to: 'connected', … }], since }
 */
import type { Json, MachineEventView } from '../contract.js';

/** Events kept per device. */
export const EVENTS_KEPT = 20;
/** Devices with a history at once. */
export const DEVICES_KEPT = 1000;
/** A payload's JSON past this is kept cut (and marked `truncated`). */
export const PAYLOAD_CHARS_KEPT = 2000;

interface Kept {
  readonly at: number;
  readonly type: string;
  /** JSON of the fields besides `type`; '' for none. */
  readonly payload: string;
  readonly truncated: boolean;
  readonly from: string;
  readonly to: string;
}

interface Ring {
  /** Oldest first; at most EVENTS_KEPT. */
  readonly events: Kept[];
  /** Since when every event of the device is in `events` (or was, before the oldest dropped out). */
  readonly since: number;
}

/** JSON of an event's fields besides `type`, whatever they hold (errors, cycles, bigints). */
export function payloadText(event: { readonly type: string; readonly [key: string]: unknown }): string {
  let empty = true;
  const fields: Record<string, unknown> = {};
  for (const key in event)
    if (key !== 'type' && Object.hasOwn(event, key)) {
      fields[key] = event[key];
      empty = false;
    }
  if (empty) return '';
  try {
    return JSON.stringify(fields, (_key, value: unknown) =>
      value instanceof Error
        ? { error: value.message }
        : typeof value === 'bigint'
          ? value.toString()
          : typeof value === 'function'
            ? undefined
            : value,
    );
  } catch (error) {
    return JSON.stringify({ unserialisable: (error as Error).message });
  }
}

export class MachineEventHistory {
  /** Insertion order is recency: the first entry is the least recently active or asked about. */
  private readonly rings = new Map<string, Ring>();
  private readonly startedAt: number;
  /** When a device's history last had to go; a device without one since is known from then only. */
  private droppedAt: number | undefined;

  constructor(
    private readonly now: () => number,
    private readonly limits: { readonly devices: number; readonly events: number } = {
      devices: DEVICES_KEPT,
      events: EVENTS_KEPT,
    },
  ) {
    this.startedAt = now();
  }

  record(
    id: string,
    at: number,
    event: { readonly type: string; readonly [key: string]: unknown },
    from: string,
    to: string,
  ): void {
    const ring = this.take(id);
    let payload = payloadText(event);
    const truncated = payload.length > PAYLOAD_CHARS_KEPT;
    if (truncated) payload = payload.slice(0, PAYLOAD_CHARS_KEPT);
    ring.events.push({ at, type: event.type, payload, truncated, from, to });
    if (ring.events.length > this.limits.events) ring.events.shift();
  }

  /** The device's last events, newest first, and since when they are known; keeps it longest. */
  of(id: string): { readonly events: MachineEventView[]; readonly since: number } {
    const ring = this.rings.get(id);
    if (!ring) return { events: [], since: this.droppedAt ?? this.startedAt };
    this.rings.delete(id);
    this.rings.set(id, ring);
    return { events: ring.events.map(view).reverse(), since: ring.since };
  }

  /** A removed device's history goes with it. */
  forget(id: string): void {
    this.rings.delete(id);
  }

  get size(): number {
    return this.rings.size;
  }

  /** The device's ring, made the most recent (made first, dropping the least recent, if need be). */
  private take(id: string): Ring {
    let ring = this.rings.get(id);
    if (ring) this.rings.delete(id);
    else {
      if (this.rings.size >= this.limits.devices) {
        const oldest = this.rings.keys().next().value as string;
        this.rings.delete(oldest);
        this.droppedAt = this.now();
      }
      ring = { events: [], since: this.droppedAt ?? this.startedAt };
    }
    this.rings.set(id, ring);
    return ring;
  }
}

function view(k: Kept): MachineEventView {
  const payload: Json = k.payload === '' ? {} : k.truncated ? k.payload : (JSON.parse(k.payload) as Json);
  return {
    at: k.at,
    type: k.type,
    payload,
    ...(k.truncated ? { truncated: true } : {}),
    from: k.from,
    to: k.to,
  };
}
