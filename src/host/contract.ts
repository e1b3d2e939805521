/**
 * The one API the operator's views use, written once. Both transports serve it — IPC in the
 * Electron shell, HTTP + WebSocket in `fleetvisor serve` — and the renderer imports only its types.
 *
 * - **Calls**: `{ method, args }` → an {@link Envelope}. Every method's arguments are validated at
 *   the boundary by the zod schema in {@link METHODS} (unknown methods and bad arguments are
 *   `badRequest` with the reason); results are plain JSON.
 * - **Push stream**: a {@link Snapshot} first, then {@link Diff}s coalesced to at most 20 per
 *   second. A client that does not keep up is never buffered for: the host keeps only which
 *   things changed (bounded by the fleet's size, not by the message rate) and, past a bound,
 *   tells it to `resync` and sends a fresh snapshot when it can take one.
 *
 * This file imports nothing but zod and types, so the renderer can import it.
 *
 * @example
 * const r = await api.call('devices', { text: 'pump', state: 'connected', limit: 50 });
 * if (r.ok) r.value.items; else r.error.code; // 'badRequest' | 'notFound' | …
 */

import { z } from 'zod';
import type { JsonValue } from '../lib/json.js';
import type { Result } from '../lib/result.js';

// ---------------------------------------------------------------------------------------------
// Envelope

export type ApiErrorCode =
  | 'badRequest'
  | 'unauthorized'
  | 'notFound'
  | 'notAllowed'
  | 'conflict'
  | 'unavailable'
  | 'internal'
  | (string & {});

export interface ApiError {
  readonly code: ApiErrorCode;
  readonly message: string;
  /** Wall-clock ms when trying again can work: with `circuitOpen` (the next probe) and `rateLimited`. */
  readonly retryAt?: number;
}

export type Envelope<T> = Result<T, ApiError>;

export type Json = JsonValue;

// ---------------------------------------------------------------------------------------------
// Views of the core

/**
 * A tree node's status. `stopped`: nothing runs and its last exit was clean (stopped on purpose,
 * finished); `failed`: nothing runs because its last exit was a crash or its supervisor gave up
 * (reached its restart intensity) — OTP's which_children shows both as `undefined`; `restarting`:
 * its supervisor is starting it again.
 */
export type ProcessStatus = 'running' | 'restarting' | 'stopped' | 'failed' | 'undefined';

/** One node of the supervision tree (the observer view). The root is the app's root supervisor. */
export interface TreeNode {
  /** Stable key for the UI: `<parent key>/<child id>`. */
  readonly key: string;
  readonly pid: number | null;
  readonly name: string;
  /** The child id under its parent. */
  readonly childId: string;
  readonly type: 'supervisor' | 'worker' | 'app';
  readonly status: ProcessStatus;
  /**
   * Why its last process ended, when it ended: `error: …`, `killed`, `shutdown:
   * reached_max_restart_intensity` (its supervisor gave up), `shutdown`, or a failed device's
   * failure. Shown for `failed` and `stopped` nodes; kept after a restart as the last exit.
   */
  readonly reason?: string;
  readonly restartType?: 'permanent' | 'transient' | 'temporary';
  /** Restarts of this child by its supervisor (for a device: of its machine). */
  readonly restarts: number;
  /** Supervisors: strategy and intensity (restarts inside the period against the maximum). */
  readonly strategy?: string;
  readonly intensity?: {
    readonly restartsInWindow: number;
    readonly maxRestarts: number;
    readonly periodMs: number;
  };
  /** The device this node belongs to, if any. */
  readonly deviceId?: string;
  /** Workers with a state machine: the current state. */
  readonly state?: string;
  readonly children?: readonly TreeNode[];
}

/**
 * One entry of a process's restart timeline (`processInfo`): how one of its processes ended and
 * what started in its place. Kept by the host since it started, per process name, the last 20.
 */
export interface ProcessLifeEntry {
  /** Wall-clock ms when the process ended (for `gaveUp`: when its supervisor gave up). */
  readonly at: number;
  /** The pid that ended. */
  readonly pid: number;
  /**
   * `crash`: an abnormal exit (`killed`, `error: …`); `stop`: `normal` or `shutdown` (stopped on
   * purpose, or with its supervisor's group); `gaveUp`: this supervisor passed its restart intensity.
   */
  readonly kind: 'crash' | 'stop' | 'gaveUp';
  /** The exit reason as the tree shows it, e.g. `killed`, `error: boom`, `shutdown`. */
  readonly reason: string;
  /**
   * The process that took its place: `restart` when its supervisor restarted it (with the
   * restarts in its window then and how long the restart took), `start` when it was started again
   * otherwise (its supervisor was restarted as a whole, restartChild, an operator restarting a
   * failed device). Absent: nothing yet.
   */
  readonly replacedBy?: {
    readonly pid: number;
    readonly at: number;
    readonly by: 'restart' | 'start';
    readonly restartsInWindow?: number;
    readonly maxRestarts?: number;
    readonly durationMs?: number;
  };
}

/**
 * One process as Erlang's observer shows it (`processInfo`): what it is, what it holds, how its
 * last process ended and its restart timeline. Fields that cannot be measured honestly say so
 * (`null` with a `note`) rather than guess.
 */
export interface ProcessInfo {
  /** Null: the child has no running process (stopped, failed, restarting). */
  readonly pid: number | null;
  readonly name: string;
  /** The runtime's process kind; null without a running process. */
  readonly kind: 'statem' | 'server' | 'eventManager' | 'task' | 'supervisor' | null;
  readonly type: 'supervisor' | 'worker';
  readonly status: ProcessStatus;
  /** Its supervisor; null for the root. */
  readonly supervisor: { readonly pid: number; readonly name: string } | null;
  readonly childId: string | null;
  readonly restartType?: 'permanent' | 'transient' | 'temporary';
  /** Restarts of this child by its supervisor. */
  readonly restarts: number;
  readonly deviceId?: string;
  /** A state machine's current state, and whether it is hibernating (its actor dropped). */
  readonly state?: string;
  readonly hibernating?: boolean;
  /** Messages queued and not handled yet; `length` null when the process keeps none the host can read. */
  readonly mailbox: { readonly length: number | null; readonly note: string };
  /**
   * Its running timers, earliest first. A machine's timeouts name their event; other timers (a
   * supervisor's restart retry, a link's check) have the runtime's label as `kind` and `key` and
   * an empty `event`.
   */
  readonly timers: readonly TimerView[];
  /** `bytes` null: JavaScript keeps one heap for every process, so a share of it is not measurable. */
  readonly memory: { readonly bytes: number | null; readonly note: string };
  /** How its last process ended; null while its first process runs. */
  readonly lastExit: {
    readonly reason: string;
    readonly type: 'normal' | 'shutdown' | 'killed' | 'error';
    /** An error's stack (first lines), code and cause; a shutdown's detail. */
    readonly detail: string | null;
    /** Wall-clock ms, when the host saw it. */
    readonly at: number | null;
  } | null;
  /** Oldest first, at most 20. */
  readonly timeline: readonly ProcessLifeEntry[];
  /** Wall-clock ms since when the timeline is kept (older exits are not known). */
  readonly timelineSince: number;
}

export interface TimerView {
  /** `after` (a state's own timeout), `state`, `event` or `named` (e.g. `liveness`). */
  readonly kind: string;
  /** The timer's id: xstate's for `after`, the name for named timeouts. */
  readonly key: string;
  /** The event it sends when it fires, e.g. `LIVENESS_TIMEOUT`. */
  readonly event: string;
  /** Wall-clock deadline (ms since epoch) and the total delay, for a countdown bar. */
  readonly deadline: number;
  readonly delayMs: number;
}

export interface LinkView {
  readonly up: boolean;
  readonly via: string | null;
  readonly since: number | null;
  readonly reason: string | null;
}

/** A row of the fleet table. */
export interface DeviceRow {
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly tags: readonly string[];
  readonly health: 'running' | 'failed' | 'stopped';
  readonly state: string;
  readonly stateEnteredAt: number;
  readonly link: LinkView;
  readonly firmware: string | null;
  /** Wall-clock ms of the last message from the device; null: never. */
  readonly lastSeen: number | null;
  readonly restarts: number;
  readonly drift: number;
  readonly failure: { readonly code: string; readonly message: string } | null;
  readonly timers: readonly TimerView[];
  /** The device's command circuit breaker when it is not closed (absent: closed). */
  readonly breaker?: 'open' | 'halfOpen';
  /** The convention it speaks: `homie`, `sparkplug`, `modbus`; absent: Fleetvisor's own protocol. */
  readonly convention?: string;
  /**
   * In a cluster, a device another instance supervises: the row is read from the shared database,
   * not live (docs/scale-out.md). Of such a row `lastSeen` is null, `restarts` and `drift` are 0,
   * `timers` is empty and `breaker` absent: what only its owner knows (its detail asks the owner).
   * Absent: this instance supervises the device, and pushes its row as it changes.
   */
  readonly remote?: RemoteRowInfo;
}

/** Where a remote row of the fleet table comes from and how old it is. */
export interface RemoteRowInfo {
  /** The instance that leases the device's shard; null: none now (a failover in progress). */
  readonly owner: string | null;
  /** When this instance read the row from the database (wall ms): the row says what was saved by then. */
  readonly readAt: number;
  /**
   * When the owner last saved the device's state (wall ms, the owner's clock; it saves at every
   * transition, as it happens); null: never saved.
   */
  readonly savedAt: number | null;
}

export interface MachineView {
  readonly id: string;
  /** State nodes, nested, with the events that leave each and where they go. */
  readonly states: readonly MachineStateView[];
}

export interface MachineStateView {
  readonly path: string;
  readonly initial: boolean;
  readonly transitions: readonly { readonly event: string; readonly target: string | null }[];
  readonly children: readonly MachineStateView[];
}

export interface DeviceDetail extends DeviceRow {
  readonly attributes: Json;
  readonly spec: Json;
  readonly status: Json;
  readonly driftItems: readonly { readonly field: string; readonly desired: Json; readonly reported: Json }[];
  readonly machine: MachineView | null;
  readonly transitions: readonly { readonly at: number; readonly from: string; readonly to: string }[];
  readonly metrics: readonly string[];
  readonly actions: readonly ActionView[];
  readonly openCommands: readonly CommandView[];
  /** The guards on its commands (docs/commands.md): circuit breaker and rate limit. */
  readonly guards?: GuardsView;
}

/** One event a device's machine processed, as the inspector lists it. */
export interface MachineEventView {
  /** Wall-clock ms. */
  readonly at: number;
  /** `HELLO`, `LINK_DOWN`, … ; xstate's own: `xstate.init` (started or restored), `xstate.after.…` (a delay). */
  readonly type: string;
  /** Its fields besides `type`; past 2,000 characters of JSON, a string cut there (`truncated`). */
  readonly payload: Json;
  readonly truncated?: boolean;
  /** The state before and after it (equal: it changed the context only, or nothing). */
  readonly from: string;
  readonly to: string;
}

/** A device's machine for the inspector (`deviceInspect`). */
export interface DeviceInspection {
  readonly id: string;
  readonly state: string;
  /** False when failed or restarting: nothing can be sent. */
  readonly running: boolean;
  /** The machine's context as persisted (JSON); null before it ever ran. */
  readonly context: Json;
  /** Every event type the machine has a transition on. */
  readonly events: readonly string[];
  /** Those its current state accepts: what `sendEvent` takes now. */
  readonly accepts: readonly string[];
  /** The last events it processed, newest first (at most 20). */
  readonly lastEvents: readonly MachineEventView[];
  /** Wall-clock ms since when this host kept the device's events (older ones are not known). */
  readonly recordedSince: number;
  /** The largest `sendEvent` payload, as JSON text. */
  readonly maxPayloadChars: number;
}

/** A device's command guards: its circuit breaker and its token bucket. */
export interface GuardsView {
  readonly breaker: {
    /** `halfOpen`: the cool-down is over, the next command is the probe. */
    readonly state: 'closed' | 'open' | 'halfOpen';
    readonly consecutiveFailures: number;
    /** How many times it opened since the app started. */
    readonly opens: number;
    /** Wall-clock ms when a probe may go; null while closed. */
    readonly nextProbeAt: number | null;
    readonly probing: boolean;
    readonly lastFailure: string | null;
    /** Failures in a row that open it, and its cool-down. */
    readonly failures: number;
    readonly coolDownMs: number;
  };
  readonly rate: { readonly perSecond: number; readonly burst: number; readonly tokens: number };
}

export interface ActionView {
  readonly name: string;
  readonly description: string;
  readonly destructive: boolean;
  readonly target: 'command' | 'event';
  /** JSON Schema of the arguments, for a generated form. */
  readonly argsSchema: Json;
}

export interface CommandView {
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly args: Json;
  readonly actor: string;
  readonly status: string;
  readonly requestedAt: number;
  readonly completedAt: number | null;
  readonly expiresAt: number | null;
  readonly result: Json;
  readonly error: ApiError | null;
}

export interface EventView {
  readonly seq: number;
  readonly at: number;
  readonly deviceId: string | null;
  readonly kind: string;
  readonly data: Json;
}

export interface Page<T> {
  readonly items: readonly T[];
  readonly total?: number;
  /** Pass as `cursor` for the next page; null at the end. */
  readonly next: number | null;
}

export interface Bucket {
  readonly start: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly avg: number;
}

export interface HealthItem {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface SystemStats {
  readonly at: number;
  readonly devices: { readonly total: number; readonly online: number; readonly failed: number };
  readonly processes: number;
  /** Messages from devices per second (last 10 s): telemetry and signs of life, every convention. */
  readonly ingestRate: number;
  readonly restarts: number;
  readonly commandLatencyMs: {
    readonly p50: number | null;
    readonly p95: number | null;
    readonly p99: number | null;
  };
  readonly queues: { readonly [name: string]: number };
  readonly broker: {
    readonly url: string | null;
    readonly connected: boolean;
    readonly embedded: boolean;
    /** What the embedded broker refused strangers and devices (connect, publish, subscribe); zeros for an external broker. */
    readonly refused: {
      readonly connect: number;
      readonly publish: number;
      readonly subscribe: number;
      /**
       * The clients refused most recently, newest first (at most 20), each with its counts and its
       * last reason (`badCredentials`, an ACL message, …); absent for an external broker.
       */
      readonly clients?: readonly BrokerRefusedClient[];
    };
  };
  /**
   * Device messages that reached the host and were not stored, by cause (the store's code: e.g.
   * `overloaded`, `writeFailed`), since the host started. Zero is the promise; anything else is
   * data loss, shown as such.
   */
  readonly dataLoss: { readonly total: number; readonly byCause: { readonly [cause: string]: number } };
  /**
   * Telemetry points and device events not stored again because the store had them (device, boot,
   * seq): at most once.
   */
  readonly duplicatesIgnored: number;
  readonly heapUsedBytes: number;
}

/** One client the embedded broker refused (its client id and username as the client sent them, cut at 128 characters). */
export interface BrokerRefusedClient {
  readonly clientId: string;
  readonly username: string | null;
  readonly connect: number;
  readonly publish: number;
  readonly subscribe: number;
  readonly lastAt: number;
  readonly lastReason: string;
}

export interface DiscoveredView {
  readonly id: string;
  /** The convention it was heard on: `own` (Fleetvisor's protocol), `homie`, `sparkplug`. */
  readonly convention: string;
  readonly kind: string;
  readonly firmware: string;
  readonly via: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly reason: string;
}

/**
 * A bulk adoption on the host (`adoptBulk`): one at a time, run by the host whether or not a page
 * is open, paced in batches; every device's outcome counted. `done` is `adopted + failed +
 * skipped`; `skipped` are devices gone from the discovered list before their turn (adopted by
 * someone else, dropped). `failures` groups the failed by code, with the first message and ids.
 */
export interface AdoptBulkView {
  readonly id: string;
  readonly state: 'running' | 'finished' | 'cancelled';
  /** What was asked: explicit ids (how many), or the filter as given. */
  readonly selection:
    | { readonly ids: number }
    | {
        readonly text: string;
        readonly kind?: string;
        readonly convention?: string;
        readonly except: number;
      };
  readonly total: number;
  readonly done: number;
  readonly adopted: number;
  readonly failed: number;
  readonly skipped: number;
  readonly failures: readonly {
    readonly code: string;
    readonly count: number;
    readonly message: string;
    /** The first few ids that failed so. */
    readonly ids: readonly string[];
  }[];
  readonly startedBy: string;
  readonly startedAt: number;
  readonly finishedAt: number | null;
  /** Who cancelled it (`host stopping` when the app stopped under it). */
  readonly cancelledBy: string | null;
}

export interface ActResult {
  readonly id: string;
  readonly ok: boolean;
  readonly commandId?: string;
  readonly state?: string;
  readonly commandStatus?: string;
  readonly error?: ApiError;
}

/** The Settings view: what can be set, what the file holds, what runs now, what a restart changes. */
export interface SettingsView {
  readonly file: string;
  readonly fields: readonly {
    readonly name: string;
    readonly label: string;
    readonly group: string;
    readonly kind: 'text' | 'number' | 'boolean' | 'choice';
    readonly choices: readonly string[] | null;
    readonly help: string;
  }[];
  readonly saved: Readonly<Record<string, string | number | boolean>>;
  readonly running: Readonly<Record<string, string | number | boolean>>;
  /** Set by --config, the environment or the command line: they win over the file. */
  readonly overridden: readonly string[];
  /** Saved values that differ from the running ones: a restart applies them. */
  readonly restartNeeded: readonly string[];
}

/**
 * A stored firmware image (docs/firmware.md §4) with the devices of its kinds that run its
 * version and those whose spec asks for it.
 */
export interface FirmwareImageView {
  readonly sha256: string;
  readonly version: string;
  readonly kinds: readonly string[];
  readonly hardwareRevision: string | null;
  readonly size: number;
  /** The id of the key that signed its manifest (SHA-256 of the raw public key, hex). */
  readonly keyId: string;
  readonly importedAt: number;
  readonly importedBy: string;
  /** For an explicit downgrade: the newer version that was stored. */
  readonly downgradeFrom: string | null;
  /** The soak between waves its signed manifest declares for its rollouts (seconds); null: none. */
  readonly soakSeconds: number | null;
  readonly runningOn: readonly string[];
  readonly wantedBy: readonly string[];
}

/**
 * Why `firmwareImport` refused an image: the firmware layer's closed codes, answered as the
 * error's code, with its message naming the reason (docs/firmware.md §3). Nothing is stored.
 */
export type FirmwareRefusalCode =
  | 'badManifest'
  | 'unsigned'
  | 'unknownKey'
  | 'badSignature'
  | 'unknownKind'
  | 'firmwareNotSupported'
  | 'tooLarge'
  | 'truncated'
  | 'sizeMismatch'
  | 'hashMismatch'
  | 'duplicateImage'
  | 'versionConflict'
  | 'downgrade'
  | 'writeFailed';

/** One device's firmware update job (src/firmware/update-job.ts), as the views show it. */
export interface FirmwareJobView {
  readonly deviceId: string;
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  /** SHA-256 of the image. */
  readonly sha256: string;
  /** queued, transferring, verifying, applying, rebooting, onTrial, confirming, rollingBack; or final: succeeded, rolledBack, failed, cancelled. */
  readonly step: string;
  /** Bytes the device acknowledged holding. */
  readonly offset: number;
  /** Where the transfer started (greater than 0 when it resumed). */
  readonly resumedFrom: number;
  readonly bytesPerSecond: number;
  readonly resent: number;
  /** Wall-clock ms by which the current step (reboot, trial) must end. */
  readonly deadline: number | null;
  readonly error: { readonly step: string; readonly code: string; readonly message: string } | null;
}

/** A rollout of one image to many devices in waves (src/firmware/rollout.ts). */
export interface RolloutView {
  readonly id: string;
  readonly version: string;
  readonly sha256: string;
  /** running, paused, completed, aborted, cancelled; or damaged (see `damage`). */
  readonly state: string;
  /** Why it paused or aborted; for a damaged one, its damage's message. */
  readonly reason: string | null;
  /** Its maintenance window as written; null when it has none. */
  readonly window: string | null;
  /** Outside its window: when the window opens next (wall ms); null when open or none. */
  readonly windowOpensAt: number | null;
  /** Soaking between two waves: when the next wave starts (wall ms); null otherwise. */
  readonly soakEndsAt: number | null;
  /** 0-based index of the wave running (or last run). */
  readonly wave: number;
  /** Each wave's end (exclusive) in `order`. */
  readonly waveEnds: readonly number[];
  /** The frozen device list, in wave order. */
  readonly order: readonly string[];
  readonly devices: Readonly<
    Record<
      string,
      {
        readonly state: string;
        readonly wave: number;
        readonly attempts: number;
        readonly step: string | null;
        readonly error: { readonly code: string; readonly message: string } | null;
      }
    >
  >;
  readonly counts: Readonly<Record<string, number>>;
  readonly createdBy: string;
  readonly createdAt: number;
  /**
   * A stored rollout that cannot be read back (state `damaged`; version, hash, creator and time
   * from its row when readable, else empty; no waves or devices): the field at fault, the message
   * naming it, the state it was saved in. It runs nothing and holds no image; `rolloutDelete`
   * removes it. Null for every other rollout.
   */
  readonly damage: {
    readonly field: string;
    readonly message: string;
    readonly savedState: string | null;
  } | null;
}

/** The largest image `firmwareImport` takes (twice the generic kind's 4 MiB slot); bigger is `badRequest`. */
export const MAX_FIRMWARE_IMAGE_BYTES = 8 * 1024 * 1024;
/** The largest manifest text `firmwareImport` takes. */
export const MAX_FIRMWARE_MANIFEST_CHARS = 64 * 1024;

/** The largest text `devicesImport` takes. */
export const MAX_DEVICES_IMPORT_CHARS = 16 * 1024 * 1024;

/** One device as `devicesExport` writes it and `devicesImport` reads it. */
export interface DeviceRecordView {
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly tags: readonly string[];
  readonly attributes: Json;
}

/** One row of `devicesImport`: `added`, `updated`, `unchanged`, or `failed` with why (nothing done). */
export interface ImportRowResult {
  /** 1-based: the JSON array's index + 1, or the CSV line after the header. */
  readonly row: number;
  readonly id: string | null;
  readonly ok: boolean;
  readonly outcome: 'added' | 'updated' | 'unchanged' | 'failed';
  readonly error?: ApiError;
}

// ---------------------------------------------------------------------------------------------
// Methods: argument schemas (validated at the boundary) and result types

/** Alarm severities, most severe first (src/alarms/rules.ts). */
export const ALARM_SEVERITIES = ['critical', 'major', 'minor', 'warning'] as const;
export type AlarmSeverity = (typeof ALARM_SEVERITIES)[number];

/** One instance of a cluster, as the lease table sees it. */
export interface ClusterInstanceInfo {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly apiUrl: string | null;
  readonly startedAt: number;
  /** How long ago it last renewed its leases (the database's clock). */
  readonly seenAgoMs: number;
  /** It stopped gracefully. */
  readonly left: boolean;
  /** Shards it holds an unexpired lease on. */
  readonly shards: number;
  readonly oldestLeaseAgeMs: number | null;
  readonly newestLeaseAgeMs: number | null;
}

export interface ClusterInfo {
  /** The instance answering. */
  readonly self: string;
  readonly shardCount: number;
  readonly leaseMs: number;
  readonly instances: readonly ClusterInstanceInfo[];
  /** Shards without an unexpired lease (between an owner's death and a claim). */
  readonly unowned: number;
  /** This instance's counts since it started. */
  readonly stats: {
    readonly renewals: number;
    readonly renewFailures: number;
    readonly claimed: number;
    readonly handedOver: number;
    readonly lost: number;
  };
  /** Devices this instance supervises now. */
  readonly devices: number;
  /** Devices of the whole fleet, whichever instance supervises them. */
  readonly fleetDevices: number;
}

/** One alarm: raised, acknowledged, cleared and shelved, each with who and when (wall ms). */
export interface AlarmView {
  readonly id: number;
  readonly ruleId: string;
  readonly deviceId: string;
  readonly severity: string;
  readonly message: string;
  readonly value: number | null;
  readonly raisedAt: number;
  readonly ackedAt: number | null;
  readonly ackedBy: string | null;
  /** `system` when its condition ended; `rule deleted by …`. */
  readonly clearedAt: number | null;
  readonly clearedBy: string | null;
  readonly shelvedUntil: number | null;
  readonly shelvedBy: string | null;
}

export interface AlarmCounts {
  /** Open (not cleared). */
  readonly active: number;
  /** Open, not acknowledged, not shelved: the navigation's count. */
  readonly unacked: number;
  readonly shelved: number;
  /** Of `unacked`, per severity. */
  readonly bySeverity: Readonly<Record<string, number>>;
}

export interface AlarmRuleView {
  /** The rule as validated, defaults filled in (src/alarms/rules.ts). */
  readonly rule: { readonly id: string; readonly type: string; readonly severity: string } & Readonly<
    Record<string, Json>
  >;
  readonly description: string;
  /** `crashed`: it threw and was removed (see `error`); saving it again reinstalls it. */
  readonly status: 'running' | 'disabled' | 'crashed';
  readonly error: string | null;
  readonly updatedBy: string;
  readonly updatedAt: number;
  readonly active: number;
}

const id = z.string().min(1).max(64);
const limit = z.number().int().min(1).max(1000).default(100);

export const METHODS = {
  tree: z.object({}).strict(),
  devices: z
    .object({
      text: z.string().max(200).optional(),
      kind: z.string().max(64).optional(),
      state: z.string().max(200).optional(),
      tag: z.string().max(64).optional(),
      health: z.enum(['running', 'failed', 'stopped']).optional(),
      /**
       * In a cluster: `all` the fleet's devices, `own` those this instance supervises (live),
       * `remote` the others (read from the shared database, each with `remote`). Alone: `remote` is none.
       */
      scope: z.enum(['all', 'own', 'remote']).default('all'),
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(10_000).default(100),
    })
    .strict(),
  device: z.object({ id }).strict(),
  /** A device's machine: state, context, the events it accepts now, the last ones it processed. */
  deviceInspect: z.object({ id }).strict(),
  /**
   * Sends an event to a device's machine by hand, with `payload` (a JSON object) as its fields;
   * audited as `device.eventSent`. Refused, with the fleet's code: `notFound`, `notRunning`,
   * `unknownEvent`, `notAccepted` (not in its current state), `badPayload`.
   */
  sendEvent: z.object({ id, event: z.string().min(1).max(64), payload: z.json().optional() }).strict(),
  telemetry: z
    .object({
      id,
      metric: z.string().min(1).max(64),
      fromMs: z.number().int(),
      toMs: z.number().int(),
      buckets: z.number().int().min(1).max(2000).default(300),
    })
    .strict()
    .refine((a) => a.toMs > a.fromMs, { message: 'toMs must be after fromMs' }),
  events: z
    .object({
      id: id.optional(),
      kind: z.string().max(100).optional(),
      fromMs: z.number().int().optional(),
      toMs: z.number().int().optional(),
      cursor: z.number().int().optional(),
      limit,
    })
    .strict(),
  commands: z.object({ id: id.optional(), cursor: z.number().int().optional(), limit }).strict(),
  health: z.object({}).strict(),
  stats: z.object({}).strict(),
  kinds: z.object({}).strict(),
  /** A page of the discovered list (at most 1,000 are kept), newest first; optionally of one kind. */
  discovered: z
    .object({
      offset: z.number().int().min(0).default(0),
      limit: z.number().int().min(1).max(1000).default(1000),
      kind: z.string().min(1).max(128).optional(),
    })
    .strict(),
  act: z
    .object({
      ids: z.array(id).min(1).max(10_000),
      action: z.string().min(1).max(64),
      args: z.record(z.string(), z.json()).default({}),
      /** Who asks; the transports fill in the operator. */
      actor: z.string().min(1).max(64).default('operator'),
    })
    .strict(),
  restartDevice: z.object({ id }).strict(),
  killProcess: z.object({ pid: z.number().int().min(1) }).strict(),
  restartChild: z
    .object({ supervisorPid: z.number().int().min(1), childId: z.string().min(1).max(200) })
    .strict(),
  terminateChild: z
    .object({ supervisorPid: z.number().int().min(1), childId: z.string().min(1).max(200) })
    .strict(),
  /**
   * One process as the observer shows it: by `pid`, or as the child `childId` of `supervisorPid`
   * (also when nothing runs; `pid` then names its last process, whose timeline is kept).
   */
  processInfo: z
    .object({
      pid: z.number().int().min(1).optional(),
      supervisorPid: z.number().int().min(1).optional(),
      childId: z.string().min(1).max(200).optional(),
    })
    .strict()
    .refine((a) => a.pid !== undefined || (a.supervisorPid !== undefined && a.childId !== undefined), {
      message: 'give pid, or supervisorPid and childId',
    }),
  adopt: z.object({ id }).strict(),
  /**
   * Starts adopting many discovered devices on the host (src/host/api/bulk-adopt.ts): the `ids`
   * given, or every adoptable one matching `filter` as the Discovered view filters (`text` in id,
   * convention, kind, firmware, link or reason; `except` the ids hidden there). Refused `busy`
   * while one runs, `notFound` when the filter matches none.
   */
  adoptBulk: z
    .object({
      ids: z.array(id).min(1).max(10_000).optional(),
      filter: z
        .object({
          text: z.string().max(200).default(''),
          kind: z.string().min(1).max(128).optional(),
          convention: z.string().min(1).max(64).optional(),
          except: z.array(id).max(10_000).default([]),
        })
        .strict()
        .optional(),
    })
    .strict()
    .refine((a) => (a.ids === undefined) !== (a.filter === undefined), {
      message: 'give either ids or filter',
    }),
  /** The running bulk adoption, else the last one (null before the first). */
  adoptBulkStatus: z.object({}).strict(),
  /** Cancels the running bulk adoption after the batch in flight; answers it as it ended. */
  adoptBulkCancel: z.object({}).strict(),
  cancelCommand: z.object({ commandId: z.string().min(1).max(64) }).strict(),
  setDemo: z.object({ on: z.boolean() }).strict(),
  firmwareList: z.object({}).strict(),
  /** Updates one device to a stored image (by its SHA-256); refused `notSupported` without the fw capability. */
  firmwareUpdate: z
    .object({
      deviceId: id,
      sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'sha256: 64 lowercase hex digits' }),
    })
    .strict(),
  firmwareJobs: z.object({}).strict(),
  /** Cancels a device's update before its image is applied. */
  firmwareCancel: z.object({ deviceId: id }).strict(),
  /**
   * Rolls a stored image out in waves. The devices: `devices` (explicit ids), else every device of
   * the image's kinds matching `kind`, `tag` and `runningVersion`, resolved now and frozen.
   */
  rolloutCreate: z
    .object({
      sha256: z.string().regex(/^[0-9a-f]{64}$/, { message: 'sha256: 64 lowercase hex digits' }),
      devices: z.array(id).min(1).max(100_000).optional(),
      kind: z.string().min(1).max(100).optional(),
      tag: z.string().min(1).max(100).optional(),
      runningVersion: z.string().min(1).max(64).optional(),
      /** Cumulative shares of the list (0–1] or device counts, with jobs at a time; default canary, 5 %, 25 %, 100 %. */
      waves: z
        .array(
          z
            .object({
              share: z.number().gt(0).max(1).optional(),
              count: z.number().int().min(1).optional(),
              maxConcurrent: z.number().int().min(1).max(1000).optional(),
            })
            .strict(),
        )
        .min(1)
        .max(20)
        .optional(),
      successThreshold: z.number().min(0).max(1).optional(),
      maxFailures: z.number().int().min(0).optional(),
      maxFailureShare: z.number().min(0).max(1).optional(),
      onFailure: z.enum(['pause', 'abort']).optional(),
      /** Between waves; default the image's own soak (its manifest's `soakSeconds`), else none. */
      soakMs: z.number().int().min(0).max(86_400_000).optional(),
      retries: z.number().int().min(0).max(10).optional(),
      /** Jobs start only inside it: `HH:MM-HH:MM`, after days and before `utc` if wanted (`mon-fri 02:00-04:00 utc`). */
      window: z.string().min(1).max(80).optional(),
    })
    .strict(),
  rollouts: z.object({}).strict(),
  rolloutPause: z.object({ id: z.string().min(1).max(64) }).strict(),
  rolloutResume: z.object({ id: z.string().min(1).max(64) }).strict(),
  rolloutCancel: z.object({ id: z.string().min(1).max(64) }).strict(),
  /** Deletes a damaged rollout (state `damaged` in `rollouts`); `notDamaged` for one that reads. */
  rolloutDelete: z.object({ id: z.string().min(1).max(64) }).strict(),
  /** The cluster this instance belongs to (docs/scale-out.md): instances, shards, lease ages. */
  cluster: z.object({}).strict(),
  /** The data folder's settings (src/host/settings.ts): the fields, saved and running values. */
  settings: z.object({}).strict(),
  /** Saves settings for the next start (validated as a start would); all of them, replacing the file. */
  settingsSave: z
    .object({
      values: z.record(z.string().max(64), z.union([z.string().max(1000), z.number(), z.boolean()])),
    })
    .strict(),
  firmwareImport: z
    .object({
      /** The manifest file's text (docs/firmware.md §1). */
      manifest: z.string().min(1).max(MAX_FIRMWARE_MANIFEST_CHARS),
      /** The image's bytes, base64 (standard alphabet, padded). */
      image: z
        .string()
        .min(4)
        .max(Math.ceil(MAX_FIRMWARE_IMAGE_BYTES / 3) * 4, {
          message: `the image is over ${MAX_FIRMWARE_IMAGE_BYTES} bytes`,
        })
        .regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'not base64' })
        .refine((s) => s.length % 4 === 0, { message: 'not base64 (length not a multiple of 4)' }),
      /** Accept a version older than a stored one for the same kind; audited. */
      allowDowngrade: z.boolean().default(false),
    })
    .strict(),
  // Devices managed from the app (src/host/api/devices-admin.ts); each change audited as `device.audit`.
  /** Adds a device; its attributes are validated by its kind. `test`: a Modbus device is read once first. */
  deviceAdd: z
    .object({
      id,
      kind: z.string().min(1).max(64),
      name: z.string().min(1).max(200).optional(),
      tags: z.array(z.string().min(1).max(64)).max(50).default([]),
      attributes: z.record(z.string(), z.json()).default({}),
      test: z.boolean().default(false),
    })
    .strict(),
  /** Changes name, tags or attributes (the whole object); new attributes restart its processes. */
  deviceEdit: z
    .object({
      id,
      name: z.string().min(1).max(200).optional(),
      tags: z.array(z.string().min(1).max(64)).max(50).optional(),
      attributes: z.record(z.string(), z.json()).optional(),
    })
    .strict(),
  /** Stops and removes a device (revoking its broker account); its history stays unless `purge`. */
  deviceRemove: z.object({ id, purge: z.boolean().default(false) }).strict(),
  /** One read through the Modbus bridge with these `modbus.device` attributes, nothing saved. */
  modbusTestRead: z.object({ attributes: z.record(z.string(), z.json()) }).strict(),
  devicesExport: z
    .object({
      format: z.enum(['json', 'csv']).default('json'),
      kind: z.string().max(64).optional(),
      tag: z.string().max(64).optional(),
    })
    .strict(),
  /** Adds or updates devices from an export's text (JSON or CSV), row by row. */
  devicesImport: z
    .object({
      text: z.string().min(1).max(MAX_DEVICES_IMPORT_CHARS),
      /** Default: JSON when the text starts with `[` or `{`, CSV otherwise. */
      format: z.enum(['json', 'csv']).optional(),
    })
    .strict(),
  /** Alarms, newest first; `state` default `active` (open). With the counts the navigation shows. */
  alarms: z
    .object({
      state: z.enum(['active', 'unacked', 'shelved', 'cleared', 'all']).default('active'),
      severity: z.enum(ALARM_SEVERITIES).optional(),
      deviceId: id.optional(),
      ruleId: z.string().min(1).max(64).optional(),
      cursor: z.number().int().optional(),
      limit,
    })
    .strict(),
  alarmAck: z.object({ id: z.number().int().min(1) }).strict(),
  /** Hides an open alarm from the counts and notifications for `forMs` (0 unshelves it). */
  alarmShelve: z
    .object({
      id: z.number().int().min(1),
      forMs: z
        .number()
        .int()
        .min(0)
        .max(30 * 86_400_000),
    })
    .strict(),
  alarmRules: z.object({}).strict(),
  /** Creates or replaces a rule (by its id); validated by the rule schema (src/alarms/rules.ts), `badRequest` naming the field. */
  alarmRuleSet: z.object({ rule: z.record(z.string(), z.json()) }).strict(),
  alarmRuleDelete: z.object({ id: z.string().min(1).max(64) }).strict(),
  /** The latest value of one metric per device (of `ids` if given), and every metric name heard (src/host/api/latest.ts). */
  latestValues: z
    .object({ metric: z.string().min(1).max(64).optional(), ids: z.array(id).min(1).max(10_000).optional() })
    .strict(),
} as const;

export type Method = keyof typeof METHODS;
export type ArgsOf<M extends Method> = z.input<(typeof METHODS)[M]>;
export type ParsedArgsOf<M extends Method> = z.output<(typeof METHODS)[M]>;

export interface Results {
  tree: TreeNode;
  devices: Page<DeviceRow>;
  device: DeviceDetail;
  deviceInspect: DeviceInspection;
  /** `crashed`: the machine crashed on it (its supervisor restarts it); `state`: where it is now. */
  sendEvent: {
    readonly from: string;
    readonly to: string;
    readonly state: string;
    readonly crashed: boolean;
  };
  telemetry: readonly Bucket[];
  events: Page<EventView>;
  commands: Page<CommandView>;
  health: readonly HealthItem[];
  stats: SystemStats;
  kinds: readonly {
    readonly kind: string;
    readonly title: string;
    /** JSON Schema of the attributes (input side: defaults optional), for the add form. */
    readonly attributesSchema?: Json;
    readonly actions: readonly ActionView[];
  }[];
  discovered: readonly DiscoveredView[];
  act: readonly ActResult[];
  restartDevice: DeviceRow;
  killProcess: { readonly killed: number };
  restartChild: { readonly pid: number | null };
  terminateChild: { readonly terminated: string };
  processInfo: ProcessInfo;
  adopt: DeviceRow;
  adoptBulk: AdoptBulkView;
  adoptBulkStatus: AdoptBulkView | null;
  adoptBulkCancel: AdoptBulkView;
  cancelCommand: { readonly cancelled: boolean };
  setDemo: { readonly on: boolean };
  firmwareList: {
    readonly images: readonly FirmwareImageView[];
    /** Rows that do not parse, with why. */
    readonly unreadable: readonly ApiError[];
  };
  /** `created: false`: these bytes, version and kinds were stored already (no error, nothing changed). */
  firmwareImport: { readonly image: FirmwareImageView; readonly created: boolean };
  firmwareUpdate: FirmwareJobView;
  firmwareJobs: readonly FirmwareJobView[];
  firmwareCancel: FirmwareJobView;
  rolloutCreate: RolloutView;
  rollouts: readonly RolloutView[];
  rolloutPause: RolloutView;
  rolloutResume: RolloutView;
  rolloutCancel: RolloutView;
  rolloutDelete: { readonly deleted: string };
  /** `null`: this instance runs alone (no --cluster). */
  cluster: ClusterInfo | null;
  settings: SettingsView;
  settingsSave: SettingsView;
  /** `read`: what the test read found (with `test: true`); a failed read refuses the add (`testReadFailed`). */
  deviceAdd: {
    readonly device: DeviceRow;
    readonly read: { readonly values: Record<string, number> } | null;
  };
  deviceEdit: {
    readonly device: DeviceRow;
    readonly changed: readonly string[];
    readonly restarted: boolean;
  };
  deviceRemove: {
    readonly id: string;
    /** What `purge` deleted; null: the history is kept. */
    readonly purged: {
      readonly telemetry: number;
      readonly events: number;
      readonly commands: number;
    } | null;
    readonly brokerAccountRevoked: boolean;
  };
  modbusTestRead: { readonly values: Record<string, number> };
  devicesExport: { readonly format: 'json' | 'csv'; readonly count: number; readonly text: string };
  devicesImport: {
    readonly results: readonly ImportRowResult[];
    readonly added: number;
    readonly updated: number;
    readonly unchanged: number;
    readonly failed: number;
  };
  alarms: {
    readonly items: readonly AlarmView[];
    /** Pass as `cursor` for the next page; null at the end. */
    readonly next: number | null;
    readonly counts: AlarmCounts;
  };
  alarmAck: AlarmView;
  alarmShelve: AlarmView;
  alarmRules: readonly AlarmRuleView[];
  alarmRuleSet: AlarmRuleView;
  alarmRuleDelete: { readonly deleted: string };
  /** Values heard since the host started; `values` empty without `metric`. */
  latestValues: {
    readonly metrics: readonly string[];
    readonly values: readonly { readonly id: string; readonly at: number; readonly value: number }[];
  };
}

// ---------------------------------------------------------------------------------------------
// The push stream

export interface TelemetryPoint {
  readonly id: string;
  readonly metric: string;
  readonly at: number;
  readonly value: number;
}

export interface Snapshot {
  readonly type: 'snapshot';
  readonly seq: number;
  readonly at: number;
  readonly tree: TreeNode;
  readonly devices: readonly DeviceRow[];
  readonly stats: SystemStats;
}

export interface Diff {
  readonly type: 'diff';
  readonly seq: number;
  readonly at: number;
  /** Rows that changed (whole rows: no merge logic in the client). */
  readonly devices: readonly DeviceRow[];
  readonly removed: readonly string[];
  /** The whole tree, when its shape or a status changed. */
  readonly tree?: TreeNode;
  /** The latest value of each metric that changed, per device. */
  readonly telemetry: readonly TelemetryPoint[];
  readonly events: readonly EventView[];
  readonly stats?: SystemStats;
}

export interface Resync {
  readonly type: 'resync';
  readonly reason: string;
}

export type PushMessage = Snapshot | Diff | Resync;

/** What a transport gives the host for one connected client. */
export interface StreamSink {
  /** Delivers one message; the transport serialises it. */
  send(message: PushMessage): void;
  /** True while the client has not taken what was sent (WebSocket bufferedAmount over a bound). */
  congested(): boolean;
}

/** The host's side of the contract, as the transports use it. */
export interface HostApi {
  call(method: string, args: unknown, context?: { readonly actor?: string }): Promise<Envelope<unknown>>;
  /** Opens a push stream to one client; the returned function closes it. */
  openStream(sink: StreamSink): () => void;
}

/** Typed calls for the renderer: `client.call('device', { id })` → `Envelope<DeviceDetail>`. */
export interface TypedClient {
  call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Envelope<Results[M]>>;
  subscribe(listener: (message: PushMessage) => void): () => void;
}

/** Most pushes per second to one client. */
export const MAX_PUSH_PER_SECOND = 20;
