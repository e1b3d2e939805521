/**
 * The one command lifecycle: every command to a device, whatever carries it (our protocol over
 * MQTT or serial, a Homie `/set`, a Sparkplug NCMD/DCMD, a Modbus write, a firmware step), is
 *
 *   audited (the store's command log, before anything reaches the device)
 *   → dispatched by its carrier, at once when the device is reachable, when it returns otherwise
 *     (carriers that cannot queue refuse an offline device with `offline`)
 *   → confirmed by the carrier's matcher (a protocol reply, a Homie echo, a Sparkplug value coming
 *     back, a Modbus acknowledgement) → `succeeded`, or `failed` with the device's own code
 *   → or ended by time: `timedOut` (sent, no confirmation within the carrier's reply time),
 *     `expired` (its time to live ran out before it could be sent), or by an operator: `cancelled`.
 *
 * Every command ends in exactly one final status, written to the store. Open commands survive an
 * app restart ({@link CommandTracker.load}); a carrier that is idempotent on the device (our
 * protocol: the `cmdId` is remembered) resends an unanswered command, the others end it
 * `failed` with `linkLost` when the link drops after the send (it may or may not have run).
 *
 * Refusals at submit time and the codes of final errors come from one closed set,
 * {@link CommandErrorCode}, which reaches the host API unchanged.
 *
 * Presence is the fleet's: the fleet tells the tracker when a device's link comes up or goes down
 * ({@link CommandTracker.deviceOnline}, {@link CommandTracker.deviceOffline}) from its `linkUp` and
 * `linkDown`, whatever the convention, so a carrier does not keep its own idea of who is reachable;
 * a carrier that finds the wire gone at dispatch answers `notReachable` and the command waits.
 *
 * @example
 * const tracker = createCommandTracker({ runtime, store, carrierOf: (deviceId) => carriers.get(kindOf(deviceId)) });
 * await tracker.load();
 * const r = await tracker.submit({ deviceId: 'pump-7', action: 'reboot', args: {}, actor: 'ana' });
 * // r.value.status: 'sent' when pump-7 is online, 'pending' until it returns otherwise
 * // … the protocol carrier, on the device's reply:
 * tracker.settle(r.value.commandId, { ok: true, result: { rebootInMs: 500 } });
 */
import type { JsonObject, JsonValue } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';
import type { CommandStatus } from '../store/store.js';

/**
 * Why a command was refused or how it failed. Closed: the host API passes these through as they
 * are. A device's own error code (a protocol reply `{ ok: false, error: { code } }`) is carried in
 * a `failed` command's error as the device sent it; the codes below are the host's.
 */
export type CommandErrorCode =
  /** The device id is malformed (wildcards, separators, too long). */
  | 'badDeviceId'
  /** No such device in the fleet. */
  | 'notFound'
  /** The arguments do not fit the action or the device (the message names the field). */
  | 'badArgs'
  /** The device is offline and its carrier cannot keep commands for it (QoS 0, no queue). */
  | 'offline'
  /** The device has too many open commands already (bounded per device). */
  | 'outboxFull'
  /** The device is busy with something exclusive (a firmware update) and this command must wait. */
  | 'busy'
  /** The carrier's link (broker connection, serial bus) is down: nothing was sent. */
  | 'noLink'
  /** Sent, and the link dropped before the confirmation; the carrier cannot resend it safely. */
  | 'linkLost'
  /** Sent, no confirmation in time. */
  | 'timedOut'
  /** Its time to live ran out before it could be sent. */
  | 'expired'
  /** Cancelled by an operator (or by the system on removal of the device). */
  | 'cancelled'
  /** The per-device circuit breaker is open after repeated failures (fleet control). */
  | 'circuitOpen'
  /** The per-device or fleet-wide rate limit refused it (fleet control). */
  | 'rateLimited'
  /** The tracker is stopping. */
  | 'stopped';

/** Every {@link CommandErrorCode}, to tell them from other codes at run time. */
export const COMMAND_ERROR_CODES: ReadonlySet<string> = new Set<CommandErrorCode>([
  'badDeviceId',
  'notFound',
  'badArgs',
  'offline',
  'outboxFull',
  'busy',
  'noLink',
  'linkLost',
  'timedOut',
  'expired',
  'cancelled',
  'circuitOpen',
  'rateLimited',
  'stopped',
]);

export const isCommandErrorCode = (code: string): code is CommandErrorCode => COMMAND_ERROR_CODES.has(code);

export type CommandError = Failure<CommandErrorCode | string>;

/** One command as the views and the API see it. */
export interface TrackedCommand {
  readonly commandId: string;
  readonly deviceId: string;
  readonly action: string;
  readonly args: JsonObject;
  readonly actor: string;
  /** Which carrier takes it: `protocol`, `homie`, `sparkplug`, `modbus`, `firmware`. */
  readonly carrier: string;
  readonly status: CommandStatus;
  readonly requestedAt: number;
  readonly expiresAt: number | null;
  /** When it was last put on the wire; null while it has never been sent. */
  readonly sentAt: number | null;
  /** How many times it was put on the wire (a resend after a drop counts). */
  readonly attempts: number;
  readonly result?: JsonValue;
  readonly error?: Failure<string>;
  readonly completedAt: number | null;
}

export interface SubmitInput {
  readonly deviceId: string;
  readonly action: string;
  readonly args?: JsonObject;
  /** An operator's name, `system:<component>`, `cli:<user>` or `api`. */
  readonly actor: string;
  /** How long it may wait for an offline device; default the tracker's; null: forever. */
  readonly ttlMs?: number | null;
}

/** How a carrier answers a dispatch. */
export type DispatchOutcome =
  /** On the wire: wait for the matcher (or the reply timeout). */
  | 'sent'
  /** The device cannot be reached now: keep it pending (only for carriers that queue). */
  | 'notReachable'
  /** Done already (a carrier that confirms synchronously, e.g. a local write). */
  | { readonly ok: true; readonly result?: JsonValue }
  /** Refused by the link now; the command ends `failed` with this error. */
  | { readonly ok: false; readonly error: Failure<string> };

/**
 * What carries commands of some kinds of device to them and recognises their confirmation. A
 * carrier knows its wire (topics, frames, registers); the tracker knows the lifecycle.
 */
export interface CommandCarrier {
  /** `protocol`, `homie`, `sparkplug`, `modbus`, `firmware`: stored with nothing, shown in views. */
  readonly name: string;
  /** Whether commands wait for an offline device (our protocol: yes; Sparkplug QoS 0: no). */
  readonly queuesWhileOffline: boolean;
  /**
   * Whether an unconfirmed command may be put on the wire again after the link dropped (the device
   * deduplicates it, as our protocol's cmdId cache does). Otherwise it ends `linkLost`.
   */
  readonly resendsAfterDrop: boolean;
  /** How long a sent command waits for its confirmation. */
  readonly replyTimeoutMs: number;
  /** Why a sent command timed out, in the carrier's words (what did not come back); optional. */
  describeTimeout?(command: TrackedCommand): string;
  /**
   * How long a command may wait for an offline device by default (the submit's `ttlMs` wins);
   * undefined: the tracker's default; null: forever.
   */
  readonly defaultTtlMs?: number | null;
  /**
   * Checks the command before it is audited: a command that can never be carried (too large for
   * the wire, a value unlike the device's declared datatype, a register that is not writable) is
   * refused now with `badArgs`, naming the field. Return the args to store (normalised).
   */
  prepare(command: {
    readonly deviceId: string;
    readonly action: string;
    readonly args: JsonObject;
  }): Result<JsonObject, Failure<CommandErrorCode>>;
  /**
   * Puts the command on the wire (again, for a resend: the same commandId). Called only while the
   * fleet has the device's link up; a wire found gone answers `notReachable`.
   */
  dispatch(command: TrackedCommand): DispatchOutcome;
}

/** A refusal or failure of the lifecycle; `retryAt` says when trying again can work (`circuitOpen`, `rateLimited`). */
export interface CommandFailure extends Failure<CommandErrorCode> {
  /** Wall-clock ms. */
  readonly retryAt?: number;
}

export type SubmitResult = Result<TrackedCommand, CommandFailure>;

/**
 * Guards consulted before a command is audited (fleet control: circuit breaker, rate limits;
 * src/devices/command-guards.ts). They run after the checks of the command itself (id, ttl,
 * carrier, the carrier's `prepare`), so a command they let through is admitted unless the audit
 * write fails or the tracker stops meanwhile.
 */
export interface CommandGuard {
  /** Undefined lets it through; a failure refuses it (`circuitOpen`, `rateLimited`, `busy`). */
  check(input: { readonly deviceId: string; readonly action: string }): CommandFailure | undefined;
  /** The command it let through was audited and is now open (its id is known). */
  admitted?(command: TrackedCommand): void;
  /** Told every final status, to count failures and successes. */
  settled?(command: TrackedCommand): void;
}

export interface CommandTracker {
  /** Reloads open commands from the store (after a restart); they go out when their device is reachable. */
  load(owns?: (deviceId: string) => boolean): Promise<number>;
  /**
   * Lets go of a device's open commands without a word to the store: another cluster instance
   * owns the device now and loads them from the command log (docs/scale-out.md).
   */
  release(deviceId: string): number;
  /** Validates, audits, then dispatches or keeps the command. */
  submit(input: SubmitInput): Promise<SubmitResult>;
  /**
   * The carrier confirmed it (or the device refused it): the command ends now. Idempotent: a second
   * confirmation is a `duplicate`. With `fromDeviceId`, a confirmation from another device than the
   * command's, or for a command never put on the wire, is an `unknownCommand`.
   */
  settle(
    commandId: string,
    outcome:
      | { readonly ok: true; readonly result?: JsonValue }
      | { readonly ok: false; readonly error: Failure<string> },
    fromDeviceId?: string,
  ): 'completed' | 'duplicate' | 'unknownCommand';
  /** The device can be reached (again): dispatch what waits for it, oldest first. */
  deviceOnline(deviceId: string): void;
  /** The device's link went away: unconfirmed commands wait for a resend, or end `linkLost`. */
  deviceOffline(deviceId: string): void;
  /** Cancels an open command (`cancelled`); false when it is not open. */
  cancel(commandId: string, actor?: string): Promise<boolean>;
  /** Cancels every open command of a device (it was removed from the fleet); how many. */
  cancelDevice(deviceId: string, reason: string): number;
  /** Open commands, oldest first (of one device, or all). */
  open(deviceId?: string): readonly TrackedCommand[];
  get(commandId: string): TrackedCommand | undefined;
  /** Every status change, for live views; the returned function stops it. */
  listen(listener: (command: TrackedCommand) => void): () => void;
  /** Resolves with the command once it has a final status. */
  settled(commandId: string): Promise<TrackedCommand>;
  /** Adds a guard consulted on every submit (fleet control). */
  addGuard(guard: CommandGuard): () => void;
  /** Resolves when every store write so far is done. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}
