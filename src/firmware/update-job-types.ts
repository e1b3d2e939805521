/**
 * The types of one device's firmware update job (update-job.ts makes it): its steps, its
 * snapshot (what the views show and the store saves), where a restored job picks up, its options
 * and its interface.
 *
 * @example
 * import type { UpdateJobSnapshot } from './update-job-types.js';
 * const finished = (s: UpdateJobSnapshot) => FINAL_UPDATE_STEPS.includes(s.step);
 */
import type { Failure, Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { FwAckMessage, HelloMessage, Message } from '../transports/protocol.js';
import type { TrialCheck } from './trial-checks.js';

export type UpdateJobStep =
  | 'queued'
  | 'transferring'
  | 'verifying'
  | 'applying'
  | 'rebooting'
  | 'onTrial'
  | 'confirming'
  | 'rollingBack'
  | 'succeeded'
  | 'rolledBack'
  | 'failed'
  | 'cancelled';

export const FINAL_UPDATE_STEPS: readonly UpdateJobStep[] = [
  'succeeded',
  'rolledBack',
  'failed',
  'cancelled',
];

/** Why a job failed, besides the device's own codes (`hashMismatch`, `tooLarge`, `busy`, …). */
export type UpdateJobErrorCode =
  | 'stalled'
  | 'rebootTimeout'
  | 'linkLost'
  | 'deviceError'
  | 'badAck'
  /** A telemetry check of the trial failed (the message is the watch's reason, trial-checks.ts). */
  | 'unhealthy';

export interface UpdateJobError {
  /** The step the job was at. */
  readonly step: UpdateJobStep;
  /** The device's code from its fw.ack, or one of {@link UpdateJobErrorCode}. */
  readonly code: string;
  readonly message: string;
}

export interface UpdateJobSnapshot {
  readonly deviceId: string;
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly step: UpdateJobStep;
  /** Bytes the device acknowledged holding, contiguous from 0. */
  readonly offset: number;
  /** Where this job's transfer started (greater than 0 when it resumed). */
  readonly resumedFrom: number;
  /** Transfer rate over the job so far, bytes per second (0 before the first ack). */
  readonly bytesPerSecond: number;
  /** Chunks sent again (no ack in time, or the device asked to go back). */
  readonly resent: number;
  /** Wall-clock ms when the current step must be done (reboot, trial); undefined if none. */
  readonly deadline: number | undefined;
  readonly error: UpdateJobError | undefined;
  /** The device's boot before the image was applied (the reboot is a hello with another one). */
  readonly boot: number | undefined;
  /** Who asked for it: `ui`, `api`, `cli`, an operator's name, `reconciler`. */
  readonly actor: string;
  /** Wall-clock ms when the job was first started. */
  readonly startedAt: number;
  /** The version the device ran when the job started; null when unknown (a job restored after a restart). */
  readonly from: string | null;
  /** The telemetry checks of its trial as written (`temp<=90`, `rssi`); empty: none. */
  readonly trialChecks: readonly string[];
  /** How long the new image runs on trial, ms (its `soakMs`, else the default 10 000). */
  readonly trialMs: number;
}

/** Where a job picks up after an app restart (from its last saved snapshot). */
export interface UpdateJobResume {
  readonly step: UpdateJobStep;
  readonly boot: number | undefined;
  /** Wall ms the current step had to end by (on trial: when the soak ends). */
  readonly deadline: number | undefined;
  readonly startedAt: number;
}

/** How the job reaches the device: the link hub's send for this device. */
export interface FirmwareChannel {
  /** False while the device has no link (the job waits for its next hello). */
  send(message: Message): boolean;
}

export interface UpdateJobOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger'>;
  readonly channel: FirmwareChannel;
  readonly deviceId: string;
  readonly image: Uint8Array;
  readonly version: string;
  /** The same id for the same image on the same device makes a later job resume. */
  readonly transferId: string;
  /** The device's last hello (its boot and slots before the update). */
  readonly current: HelloMessage | undefined;
  /**
   * Default: what the device asks for in its hello (`fw.chunk.N`, transports/fw-chunk-size.ts),
   * else 4096; at most `LIMITS.chunkBytes` (transports/protocol.ts).
   */
  readonly chunkBytes?: number;
  /** Chunks in flight; default 8. */
  readonly window?: number;
  /** No ack for this long: say the step again (chunks: from the acknowledged offset); default 3000. */
  readonly ackTimeoutMs?: number;
  /** No progress for this long: failed `stalled`; default 120 000. */
  readonly stallTimeoutMs?: number;
  /** After fw.apply, the hello of the new boot must come within this; default 60 000. */
  readonly rebootTimeoutMs?: number;
  /** How long the new image runs on trial before it is confirmed; default 10 000. */
  readonly soakMs?: number;
  /**
   * Telemetry checks while on trial (trial-checks.ts, parsed at the boundary): a reading past a
   * limit rolls back at once, a required metric never read rolls back at the trial's end, both
   * with code `unhealthy` and the watch's reason. Readings come through {@link UpdateJob.telemetry}.
   * Default none.
   */
  readonly trialChecks?: readonly TrialCheck[];
  /** Every change of the snapshot. */
  readonly onChange?: (snapshot: UpdateJobSnapshot) => void;
  /** Default `api`. */
  readonly actor?: string;
  /** Continue a job saved before an app restart at its step (else a new job starts at transferring). */
  readonly resume?: UpdateJobResume;
}

export interface UpdateJob {
  readonly deviceId: string;
  start(): void;
  /** A `fw.ack` from the device (other transfer ids are ignored). */
  ack(ack: FwAckMessage): void;
  /** Every hello of the device. */
  hello(hello: HelloMessage): void;
  /**
   * A telemetry message of the device, received at `at` (wall ms): judged by the trial's checks
   * while the job is on trial, ignored at any other step.
   */
  telemetry(values: Readonly<Record<string, number>>, at: number): void;
  /** Cancels before `fw.apply`; refused (`tooLate`) after it, when only a rollback can undo it. */
  cancel(): Result<UpdateJobSnapshot, Failure<'tooLate' | 'finished'>>;
  snapshot(): UpdateJobSnapshot;
  /** Settles with the final snapshot. */
  readonly done: Promise<UpdateJobSnapshot>;
}
