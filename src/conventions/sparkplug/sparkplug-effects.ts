/**
 * What the Sparkplug session model asks of its process, and what it reads through it: the model
 * holds no MQTT client, no timers and no fleet; each fleet call, telemetry write, rebirth request,
 * event and log line is a {@link SparkplugEffect} the process carries out at once, in order.
 *
 * @example
 * const effects: SparkplugEffect[] = [];
 * const ports: SparkplugModelPorts = { fleet, now: () => 0, connected: () => true, emit: (e) => effects.push(e) };
 * const model = new SparkplugModel(ports, options);
 */
import type { JsonObject, JsonValue } from '../../store/store.js';
import type { Announcements } from '../../transports/discovered-list.js';
import type { Datatype } from './sparkplug-codec.js';
import type { SparkplugEvent } from './sparkplug-kind.js';
import type { StatusMetric } from './sparkplug-metrics.js';

/** Over what a Sparkplug node or device is linked (its `linkUp`). */
export const VIA = 'sparkplug';

export type SparkplugLogLevel = 'debug' | 'info' | 'warn';

/** A log line; the process adds which bridge says it. */
export interface SparkplugLog {
  readonly level: SparkplugLogLevel;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export type SparkplugEffect =
  | { readonly type: 'linkUp'; readonly id: string; readonly firmware: string | null }
  | { readonly type: 'linkDown'; readonly id: string; readonly reason: string }
  /** A status write (merged into the device's status). */
  | { readonly type: 'status'; readonly id: string; readonly status: JsonObject }
  /** An event for the device's machine (if it runs). */
  | { readonly type: 'machine'; readonly id: string; readonly event: SparkplugEvent }
  | {
      readonly type: 'telemetry';
      readonly id: string;
      readonly values: Record<string, number>;
      readonly ts: number | null;
    }
  /** A metric value reported by a node or device: for the carrier, which settles the writes it confirms. */
  | {
      readonly type: 'valueReported';
      readonly id: string;
      readonly metric: string;
      readonly datatype: Datatype;
      readonly value: unknown;
      readonly reportedIn: string;
    }
  /** An NBIRTH: for the carrier, which settles the node's rebirth commands. */
  | { readonly type: 'nodeBorn'; readonly id: string; readonly seq: number | null }
  /** NCMD `Node Control/Rebirth = true` to publish now (the model checked it is connected). */
  | { readonly type: 'rebirthRequest'; readonly group: string; readonly node: string; readonly at: number }
  /** The status's metric list with new values, to write soon (batched by the process). */
  | { readonly type: 'showValues'; readonly id: string; readonly shown: StatusMetric[] }
  /** An event for the device event log. */
  | {
      readonly type: 'event';
      readonly kind: string;
      readonly deviceId: string | undefined;
      readonly data: JsonValue;
    }
  /** A rate-limited event; `log` is said only when the event is written. */
  | {
      readonly type: 'limitedEvent';
      readonly kind: string;
      readonly deviceId: string | undefined;
      readonly data: JsonValue;
      readonly log: SparkplugLog;
    }
  | ({ readonly type: 'log' } & SparkplugLog)
  /** Our own STATE read offline while connected: publish online again. */
  | { readonly type: 'publishOnline' }
  /** Handling a message threw (a bug): `what` names the message. */
  | { readonly type: 'threw'; readonly what: string; readonly error: unknown };

/** A fleet device as the model reads it. */
export interface SparkplugFleetDevice {
  readonly id: string;
  readonly kind: string;
  readonly attributes: JsonObject;
  readonly link: { readonly up: boolean; readonly since: number | null };
}

/** A node or device to add to the fleet. */
export interface SparkplugNewDevice {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly attributes: JsonObject;
}

/**
 * What the model reads of the fleet, and the one call whose answer it waits for (adding a node or
 * device decides whether its birth acts). The fleet itself fits it.
 */
export interface SparkplugFleetFacts {
  device(id: string): SparkplugFleetDevice | undefined;
  has(id: string): boolean;
  list(): readonly SparkplugFleetDevice[];
  addDevice(
    input: SparkplugNewDevice,
  ): Promise<
    { readonly ok: true } | { readonly ok: false; readonly error: { code: string; message: string } }
  >;
}

export interface SparkplugModelPorts {
  readonly fleet: SparkplugFleetFacts;
  /** Wall-clock ms. */
  now(): number;
  /** Connected to the broker with our STATE online: rebirth requests can go out. */
  connected(): boolean;
  /** Carries out one effect at once: the model's next step may read what it changed. */
  emit(effect: SparkplugEffect): void;
  /**
   * Whether a newly discovered node or device is announced now (a log line and a
   * `device.discovered` event) or only counted and summed up when the minute ends: the process's
   * per-minute budget (src/transports/discovered-list.ts `createAnnouncements`, on its clock).
   * Without it, every one is announced.
   */
  readonly announcements?: Pick<Announcements, 'take'>;
  /**
   * In a cluster: makes a device run on this instance whatever its shard (ConventionContext.pin),
   * resolved once it does; undefined alone.
   */
  readonly pin?: (deviceId: string) => Promise<boolean>;
}

/** The model's counters (the process adds its reconnects and the carrier's commands). */
export interface SparkplugCounters {
  received: number;
  births: number;
  deaths: number;
  staleDeaths: number;
  gaps: number;
  dataBeforeBirth: number;
  rebirthsRequested: number;
  rebirthsSuppressed: number;
  badMessages: number;
  badTopics: number;
  refused: number;
}

export const newCounters = (): SparkplugCounters => ({
  received: 0,
  births: 0,
  deaths: 0,
  staleDeaths: 0,
  gaps: 0,
  dataBeforeBirth: 0,
  rebirthsRequested: 0,
  rebirthsSuppressed: 0,
  badMessages: 0,
  badTopics: 0,
  refused: 0,
});

/** A `device.badMessage` event (rate-limited, with a log line when written); always counted. */
export function badMessage(
  ports: SparkplugModelPorts,
  counters: SparkplugCounters,
  id: string,
  code: string,
  message: string,
): void {
  counters.badMessages++;
  const data = { code, message: message.slice(0, 300), via: VIA };
  ports.emit({
    type: 'limitedEvent',
    kind: 'device.badMessage',
    deviceId: id,
    data,
    log: { level: 'warn', message: 'bad Sparkplug message', fields: { deviceId: id, code, message } },
  });
}

/** A log line. */
export function log(
  ports: SparkplugModelPorts,
  level: SparkplugLogLevel,
  message: string,
  fields: Record<string, unknown>,
): void {
  ports.emit({ type: 'log', level, message, fields });
}
