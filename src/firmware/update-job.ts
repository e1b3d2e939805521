/**
 * One device's firmware update over the native protocol (docs/protocol.md §5), the host side of
 * the device's A/B slots:
 *
 *   transferring (fw.begin, then a window of fw.chunk from the offset the device acknowledges;
 *   the window goes back to the acknowledged offset when no ack comes) → verifying → applying →
 *   rebooting (waits for a hello with a new boot) → onTrial (the new image runs unconfirmed for
 *   `soakMs`; healthy = online and no further reboot) → confirming → succeeded.
 *   Or: rollingBack → rolledBack (unhealthy on trial, or the device's bootloader went back by
 *   itself: its next hello runs the old version); or failed, with the step and the device's code.
 *
 * Resumable: every `fw.*` message is idempotent and the device keeps what it received across a
 * reboot or a lost link, so after a link drop, a device reboot or a new job for the same image
 * and `transferId`, `fw.begin` answers with the offset to go on from — never zero again.
 * Sends while the device is away fail; the job waits for its next hello and says `fw.begin`
 * again. A job that makes no progress for `stallTimeoutMs` fails with `stalled`.
 *
 * @example
 * const job = createUpdateJob({ runtime, channel: { send: (m) => hub.send(id, m) }, deviceId: id,
 *   image, version: '1.1.0', transferId: 'fw-1', current: hub.device(id)?.hello });
 * job.start(); // then feed it: job.ack(ack), job.hello(hello)
 * const final = await job.done; // { step: 'succeeded', … }
 */
import { createHash } from 'node:crypto';
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { ClockHandle } from '../runtime/clock.js';
import type { Runtime } from '../runtime/runtime.js';
import type { FwAckMessage, FwStep, HelloMessage, Message } from '../transports/protocol.js';
import { LIMITS } from '../transports/protocol.js';

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
export type UpdateJobErrorCode = 'stalled' | 'rebootTimeout' | 'linkLost' | 'deviceError' | 'badAck';

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
  /** Default 4096, at most {@link LIMITS.chunkBytes}. */
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
  /** Extra health check at the end of the trial (telemetry checks, …); default healthy. */
  readonly healthy?: () => boolean;
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
  /** Cancels before `fw.apply`; refused (`tooLate`) after it, when only a rollback can undo it. */
  cancel(): Result<UpdateJobSnapshot, Failure<'tooLate' | 'finished'>>;
  snapshot(): UpdateJobSnapshot;
  /** Settles with the final snapshot. */
  readonly done: Promise<UpdateJobSnapshot>;
}

/** The fw.* message each waiting step says, so a device's refusal is matched to it. */
const STEP_OF: Partial<Record<UpdateJobStep, FwStep>> = {
  transferring: 'begin',
  verifying: 'verify',
  applying: 'apply',
  confirming: 'confirm',
  rollingBack: 'rollback',
};

export function createUpdateJob(options: UpdateJobOptions): UpdateJob {
  const { runtime, channel, deviceId, image, version, transferId } = options;
  const clock = runtime.clock;
  const log = runtime.logger;
  const size = image.length;
  const sha256 = createHash('sha256').update(image).digest('hex');
  const chunkBytes = Math.min(options.chunkBytes ?? 4096, LIMITS.chunkBytes);
  const windowBytes = Math.max(1, options.window ?? 8) * chunkBytes;
  const ackTimeoutMs = options.ackTimeoutMs ?? 3000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 120_000;
  const rebootTimeoutMs = options.rebootTimeoutMs ?? 60_000;
  const soakMs = options.soakMs ?? 10_000;
  if (size < 1) throw new Error('update job: the image is empty');

  let step: UpdateJobStep = 'queued';
  let offset = 0;
  let resumedFrom = 0;
  let sentUpTo = 0;
  let resent = 0;
  let began = false;
  /** fw.begin said again after the device forgot the transfer (bounded). */
  let rebegun = 0;
  /** The offset the window last went back to on a gap (once per offset). */
  let rewoundAt = -1;
  let firstAckAt: number | undefined;
  let firstAckOffset = 0;
  let deadline: number | undefined;
  let error: UpdateJobError | undefined;
  let bootBefore = options.resume ? options.resume.boot : options.current?.boot;
  const actor = options.actor ?? 'api';
  const startedAt = options.resume?.startedAt ?? clock.wallNow();
  const versionBefore = options.current?.firmware.version;
  let ackTimer: ClockHandle | undefined;
  let stallTimer: ClockHandle | undefined;
  let stepTimer: ClockHandle | undefined;
  let resolveDone: (s: UpdateJobSnapshot) => void = () => {};
  const done = new Promise<UpdateJobSnapshot>((r) => {
    resolveDone = r;
  });

  const final = () => FINAL_UPDATE_STEPS.includes(step);

  function snapshot(): UpdateJobSnapshot {
    const elapsed = firstAckAt === undefined ? 0 : (clock.now() - firstAckAt) / 1000;
    const moved = offset - firstAckOffset;
    return {
      deviceId,
      transferId,
      version,
      size,
      sha256,
      step,
      offset,
      resumedFrom,
      bytesPerSecond: elapsed > 0 && moved > 0 ? Math.round(moved / elapsed) : 0,
      resent,
      deadline,
      error,
      boot: bootBefore,
      actor,
      startedAt,
      from: options.resume ? null : (versionBefore ?? null),
    };
  }

  function changed(): void {
    options.onChange?.(snapshot());
  }

  function clear(handle: ClockHandle | undefined): undefined {
    if (handle) clock.clearTimeout(handle);
    return undefined;
  }

  /** Moves to a step; `until` is the wall-clock deadline of a timed step (saved with it). */
  function to(next: UpdateJobStep, until?: number): void {
    step = next;
    deadline = until;
    stepTimer = clear(stepTimer);
    log.debug('firmware update step', { deviceId, transferId, step: next });
    if (final()) {
      log.info('firmware update ended', {
        deviceId,
        step: next,
        version,
        ...(error ? { code: error.code, at: error.step } : {}),
      });
      ackTimer = clear(ackTimer);
      stallTimer = clear(stallTimer);
      changed();
      resolveDone(snapshot());
      return;
    }
    changed();
  }

  function fail(code: string, message: string): void {
    error = { step, code, message };
    log.warn('firmware update failed', { deviceId, transferId, step, code, message });
    to('failed');
  }

  /** Progress seen: the stall clock starts over. */
  function progressed(): void {
    stallTimer = clear(stallTimer);
    stallTimer = clock.setTimeout(
      () => fail('stalled', `no progress for ${stallTimeoutMs} ms at ${step} (${offset} of ${size} bytes)`),
      stallTimeoutMs,
    );
  }

  /** Says the current step to the device (again); the ack timer says it again if nothing comes. */
  function say(): void {
    ackTimer = clear(ackTimer);
    if (final()) return;
    switch (step) {
      case 'transferring':
        if (!began) send({ v: 1, type: 'fw.begin', transferId, version, size, sha256, chunkBytes });
        else {
          sentUpTo = offset; // go back to what the device holds
          pump();
        }
        break;
      case 'verifying':
        send({ v: 1, type: 'fw.verify', transferId });
        break;
      case 'applying':
        send({ v: 1, type: 'fw.apply', transferId });
        break;
      case 'confirming':
        send({ v: 1, type: 'fw.confirm', transferId });
        break;
      case 'rollingBack':
        send({ v: 1, type: 'fw.rollback', transferId });
        break;
      default:
        return; // rebooting, on trial: the device speaks next
    }
    ackTimer = clock.setTimeout(() => {
      if (step === 'transferring' && began) resent += Math.ceil((sentUpTo - offset) / chunkBytes);
      say();
    }, ackTimeoutMs);
  }

  function send(message: Message): boolean {
    return channel.send(message);
  }

  function pump(): void {
    while (sentUpTo < size && sentUpTo - offset < windowBytes) {
      const end = Math.min(size, sentUpTo + chunkBytes);
      if (
        !send({ v: 1, type: 'fw.chunk', transferId, offset: sentUpTo, data: image.subarray(sentUpTo, end) })
      )
        return; // no link: the next hello says fw.begin again
      sentUpTo = end;
    }
  }

  function onAck(a: FwAckMessage): void {
    if (a.transferId !== transferId || final()) return;
    if (a.error && a.step !== 'chunk') {
      if (a.step === 'confirm' && step === 'confirming' && a.error.code === 'rolledBack') {
        // The device went back to the old image by itself (a reset on trial): that is a rollback.
        error = { step, code: a.error.code, message: a.error.message };
        to('rolledBack');
        return;
      }
      // A refusal of the step the job is at ends it (hashMismatch at verify: nothing is applied).
      if (STEP_OF[step] === a.step) fail(a.error.code, a.error.message);
      return;
    }
    switch (a.step) {
      case 'begin':
        if (step !== 'transferring') return;
        began = true;
        offset = Math.min(a.offset, size);
        sentUpTo = offset;
        if (firstAckAt === undefined) {
          resumedFrom = offset;
          firstAckAt = clock.now();
          firstAckOffset = offset;
        }
        progressed();
        changed();
        if (offset >= size) {
          next('verifying');
          return;
        }
        say();
        return;
      case 'chunk': {
        if (step !== 'transferring' || !began) return;
        if (a.error) {
          if (a.error.code === 'unknownTransfer' && rebegun < 3) {
            // The device forgot the transfer (a reset, a new begin from elsewhere): begin again,
            // which answers what it still holds.
            rebegun++;
            began = false;
            say();
            return;
          }
          fail(a.error.code, a.error.message);
          return;
        }
        if (a.offset < offset) {
          // The device holds less than it said (its storage was reset): continue from there.
          offset = a.offset;
          sentUpTo = offset;
          rewoundAt = offset;
          changed();
          pump();
          return;
        }
        if (a.offset === offset && sentUpTo > offset + chunkBytes && rewoundAt !== offset) {
          // A chunk past what it holds: one was lost. Go back now, once per offset, not after the ack timeout.
          rewoundAt = offset;
          resent += Math.ceil((sentUpTo - offset) / chunkBytes);
          sentUpTo = offset;
          pump();
          return;
        }
        if (a.offset > offset) {
          offset = Math.min(a.offset, size);
          progressed();
          changed();
          if (offset >= size) {
            next('verifying');
            return;
          }
          ackTimer = clear(ackTimer);
          ackTimer = clock.setTimeout(() => {
            resent += Math.ceil((sentUpTo - offset) / chunkBytes);
            say();
          }, ackTimeoutMs);
          pump();
        }
        return;
      }
      case 'verify':
        if (step === 'verifying') next('applying');
        return;
      case 'apply':
        if (step !== 'applying') return;
        to('rebooting', clock.wallNow() + rebootTimeoutMs);
        stepTimer = clock.setTimeout(
          () => fail('rebootTimeout', `no hello from a new boot within ${rebootTimeoutMs} ms of fw.apply`),
          rebootTimeoutMs,
        );
        ackTimer = clear(ackTimer);
        stallTimer = clear(stallTimer);
        changed();
        return;
      case 'confirm':
        if (step === 'confirming') to('succeeded');
        return;
      case 'rollback':
        if (step !== 'rollingBack') return;
        // The device reboots into the old slot: its next hello ends the job.
        ackTimer = clear(ackTimer);
        stallTimer = clear(stallTimer);
        deadline = clock.wallNow() + rebootTimeoutMs;
        stepTimer = clock.setTimeout(
          () => fail('rebootTimeout', `no hello after fw.rollback within ${rebootTimeoutMs} ms`),
          rebootTimeoutMs,
        );
        return;
    }
  }

  function next(s: UpdateJobStep): void {
    to(s);
    progressed();
    say();
  }

  function onHello(h: HelloMessage): void {
    if (final()) return;
    // `boot` is the last boot the job has seen: before the apply, the one a reboot is told from;
    // on trial, the trial's (saved with each step, so a restarted app tells the same).
    const newBoot = bootBefore !== undefined && h.boot !== bootBefore;
    bootBefore = h.boot;
    switch (step) {
      case 'transferring':
      case 'verifying':
      case 'applying':
      case 'confirming':
        // Back from a lost link or a reboot: say the step again (fw.begin answers the offset).
        if (step === 'transferring') began = false;
        if (step === 'applying' && newBoot && h.firmware.version === version && !h.firmware.confirmed) {
          startTrial(); // the apply ack was lost with the reboot
          return;
        }
        say();
        return;
      case 'rebooting':
        if (!newBoot) return;
        if (h.firmware.version === version && !h.firmware.confirmed) {
          startTrial();
          return;
        }
        error = {
          step,
          code: 'notBooted',
          message: `the device came back running ${h.firmware.version}, not ${version}`,
        };
        to('rolledBack');
        return;
      case 'onTrial':
        if (!newBoot) return;
        if (h.firmware.version !== version) {
          error = {
            step,
            code: 'bootloaderRevert',
            message: `the device rebooted on trial and went back to ${h.firmware.version}`,
          };
          to('rolledBack');
          return;
        }
        // Rebooted on trial and still on the new image: not healthy, roll back.
        rollBack('rebootedOnTrial', 'the device rebooted while the new image was on trial');
        return;
      case 'rollingBack':
        if (newBoot && h.firmware.version !== version) to('rolledBack');
        else if (newBoot) say();
        return;
      default:
        return;
    }
  }

  function startTrial(soakLeftMs = soakMs): void {
    ackTimer = clear(ackTimer);
    stallTimer = clear(stallTimer);
    to('onTrial', clock.wallNow() + soakLeftMs);
    stepTimer = clock.setTimeout(() => {
      if (options.healthy && !options.healthy()) {
        rollBack('unhealthy', 'the health check failed at the end of the trial');
        return;
      }
      next('confirming');
    }, soakLeftMs);
  }

  /** After an app restart: the step the job was at, told again, with what is left of its time. */
  function resume(r: UpdateJobResume): void {
    log.info('firmware update resumed', { deviceId, transferId, step: r.step });
    const left = (r.deadline ?? clock.wallNow()) - clock.wallNow();
    switch (r.step) {
      case 'queued':
      case 'transferring':
        next('transferring'); // fw.begin answers what the device holds
        return;
      case 'verifying':
      case 'applying':
      case 'confirming':
      case 'rollingBack':
        next(r.step);
        break;
      case 'rebooting': {
        // The device may have come back while the app was down: its hello then came before this job.
        const now = options.current;
        if (
          now &&
          r.boot !== undefined &&
          now.boot !== r.boot &&
          now.firmware.version === version &&
          !now.firmware.confirmed
        ) {
          bootBefore = now.boot;
          startTrial();
          return;
        }
        to('rebooting', clock.wallNow() + Math.max(0, left));
        stepTimer = clock.setTimeout(
          () => fail('rebootTimeout', `no hello from a new boot within ${rebootTimeoutMs} ms of fw.apply`),
          Math.max(0, left),
        );
        changed();
        break;
      }
      case 'onTrial':
        startTrial(Math.max(0, left));
        break;
      default:
        return;
    }
    // The device may have rebooted while the app was away: its last hello tells.
    if (options.current && options.current.boot !== r.boot) onHello(options.current);
  }

  function rollBack(code: string, message: string): void {
    error = { step, code, message };
    next('rollingBack');
  }

  return {
    deviceId,
    start() {
      if (step !== 'queued') return;
      if (options.resume) {
        resume(options.resume);
        return;
      }
      log.info('firmware update started', {
        deviceId,
        transferId,
        version,
        from: versionBefore ?? null,
        size,
      });
      const fw = options.current?.firmware;
      if (fw?.version === version && fw.confirmed === false) {
        // The image runs already, on trial (an earlier job ended or was lost after the apply):
        // no second transfer (the device would answer busy); the trial runs and is confirmed.
        log.info('firmware update: the image is on trial already; confirming after the trial', {
          deviceId,
          version,
        });
        offset = size;
        startTrial();
        return;
      }
      next('transferring');
    },
    ack: onAck,
    hello: onHello,
    cancel() {
      if (final()) return err('finished', `the update of ${deviceId} has already ended (${step})`);
      if (step !== 'queued' && step !== 'transferring' && step !== 'verifying')
        return err('tooLate', `the image is applied on ${deviceId} (${step}); only a rollback can undo it`);
      error = { step, code: 'cancelled', message: 'cancelled by the operator' };
      to('cancelled');
      return ok(snapshot());
    },
    snapshot,
    done,
  };
}
