/**
 * Discovery and adoption, one policy for every convention: a device the fleet does not know that
 * makes itself known (a protocol hello, a Homie `$state`, a Sparkplug birth, a Modbus probe) is
 * reported here by its convention. With `manual` adoption it is listed for the operator, who
 * adopts it, many at once, or ignores it; with `auto` it is added at once — at a bounded rate:
 * past `autoAdoptMaxPerWindow` new devices within `autoAdoptWindowMs` automatic adoption pauses,
 * raises a visible "adoption paused: N new devices in T" alarm, and lists the rest as discovered
 * until an operator resumes it.
 *
 * Bounded: at most `maxDiscovered` entries (the oldest dropped first, every drop counted);
 * `device.discovered` events aggregated once past a per-window budget (one summary naming the
 * count), never one row per flood message.
 *
 * A refused identity owns nothing: a name that does not map to a valid id, or that maps onto an
 * id another device already holds (`plant7/line-3` and `plant7/line.3`), is listed once as a
 * `collision` / `badName` with both names and never acts on the device that holds the id.
 *
 * @example
 * const discovery = createDiscovery({ runtime, fleet, events, policy: { adopt: 'manual' } });
 * discovery.register('homie', { adopt: (d) => homie.adopt(d) });
 * discovery.seen({ id: 'kitchen-light', convention: 'homie', kind: 'homie.device', via: 'homie', summary: { firmware: '1.2' } });
 * await discovery.adopt(['kitchen-light'], 'ana');
 */
import type { JsonObject } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';

export type AdoptionMode = 'auto' | 'manual';

export interface AdoptionPolicy {
  readonly adopt: AdoptionMode;
  /** Most entries listed; default 10 000 (oldest dropped first, counted). */
  readonly maxDiscovered?: number;
  /** Automatic adoptions allowed per window before adoption pauses; default 200. */
  readonly autoAdoptMaxPerWindow?: number;
  /** Default 60 000 ms. */
  readonly autoAdoptWindowMs?: number;
}

/** What a convention reports about a device it heard from and the fleet does not know. */
export interface Sighting {
  /** The fleet id it would get (already validated by the convention's id rule). */
  readonly id: string;
  /** `protocol`, `homie`, `sparkplug`, `modbus`. */
  readonly convention: string;
  /** The fleet kind it would be added as (unknown kinds are listed, never adopted). */
  readonly kind: string;
  /** `mqtt`, `serial:/dev/ttyUSB0`, `homie`, `sparkplug`, `modbus:/dev/ttyUSB1` … */
  readonly via: string;
  /** What the device said about itself (firmware, name, group/node …), shown to the operator. */
  readonly summary: JsonObject;
  /** Attributes to add it with. */
  readonly attributes?: JsonObject;
  readonly tags?: readonly string[];
  readonly name?: string;
}

export type DiscoveredReason =
  /** Waits for the operator (manual adoption). */
  | 'manual'
  /** Its kind is not one the fleet knows. */
  | 'unknownKind'
  /** Automatic adoption is paused (too many new devices at once). */
  | 'adoptionPaused'
  /** Adding it failed (the message says why). */
  | 'addFailed'
  /** An operator chose to ignore it (kept so it is not reported again). */
  | 'ignored';

export interface DiscoveredDevice extends Sighting {
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** Messages heard from it while discovered. */
  readonly heard: number;
  readonly reason: DiscoveredReason;
  readonly detail?: string;
}

/** A name a convention could not give an id of its own; it owns nothing. */
export interface RefusedIdentity {
  readonly convention: string;
  /** The name as the device sent it (escaped for display). */
  readonly name: string;
  /** `badName` (no valid id), `collision` (the id belongs to another device). */
  readonly code: 'badName' | 'collision';
  /** For a collision: the id and who holds it. */
  readonly id?: string;
  readonly heldBy?: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly heard: number;
}

export type DiscoveryErrorCode = 'notFound' | 'unknownKind' | 'alreadyExists' | 'addFailed' | 'badRequest';

export interface DiscoveryStats {
  readonly listed: number;
  /** Entries dropped because the list was full (the oldest first). */
  readonly dropped: number;
  readonly adoptedAuto: number;
  readonly adoptedManual: number;
  /** Set while automatic adoption is paused: since when and why. */
  readonly paused:
    | { readonly since: number; readonly newDevices: number; readonly windowMs: number }
    | undefined;
}

/** How a convention adds a device it discovered (after the fleet has it, the convention takes over). */
export interface Adopter {
  /** Called after the fleet added the device: the convention replays what it heard (hello, birth). */
  adopted(device: DiscoveredDevice): void | Promise<void>;
}

export interface Discovery {
  /** A convention takes part (its adopter is told about adoptions of its devices). */
  register(convention: string, adopter: Adopter): void;
  /**
   * A device the fleet does not know made itself known. Returns what happened: `adopted` (auto),
   * `listed` (waits), `ignored`.
   */
  seen(sighting: Sighting): 'adopted' | 'listed' | 'ignored';
  /** A name that cannot own an id (shown once per name, counted after). */
  refused(identity: Omit<RefusedIdentity, 'firstSeen' | 'lastSeen' | 'heard'>): void;
  /** A page of the discovered list, newest first, optionally filtered by convention, kind or text. */
  list(query?: {
    readonly convention?: string;
    readonly kind?: string;
    readonly text?: string;
    readonly offset?: number;
    readonly limit?: number;
  }): { readonly items: readonly DiscoveredDevice[]; readonly total: number };
  refusedIdentities(): readonly RefusedIdentity[];
  /** Adopts discovered devices (per-id results). */
  adopt(
    ids: readonly string[],
    actor: string,
  ): Promise<readonly { readonly id: string; readonly result: Result<void, Failure<DiscoveryErrorCode>> }[]>;
  /** Ignores discovered devices: listed as ignored, never adopted automatically. */
  ignore(ids: readonly string[], actor: string): void;
  /** Resumes automatic adoption after a pause. */
  resumeAutoAdoption(actor: string): void;
  stats(): DiscoveryStats;
}
