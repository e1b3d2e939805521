/**
 * The update job process (what it does: update-job.ts, which makes it): one device's job with its
 * three timers (no ack: say the step again; no progress: stalled; a timed step: reboot or trial),
 * acting on the pure step planner (update-job-plan.ts) and transfer window (transfer-window.ts).
 *
 * @example
 * const job = new UpdateJobProcess(options);
 * job.start(); job.ack(ack); job.hello(hello); await job.done;
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Clock, ClockHandle } from '../runtime/clock.js';
import type { Logger } from '../runtime/runtime.js';
import { announcedChunkBytes } from '../transports/fw-chunk-size.js';
import type { FwAckMessage, HelloMessage } from '../transports/protocol.js';
import { imageSha256 } from './image-hash.js';
import type { TransferWindow } from './transfer-window.js';
import {
  backToHeld,
  beginAcked,
  beginAgain,
  chunkAcked,
  chunkSent,
  countResent,
  createTransferWindow,
  heldAll,
  nextChunk,
  transferForgotten,
} from './transfer-window.js';
import { createTrialWatch, type TrialWatch } from './trial-checks.js';
import type { StepReason, TransferHeader } from './update-job-plan.js';
import { planHello, planRefusal, planResume, stepMessage } from './update-job-plan.js';
import type {
  UpdateJobError,
  UpdateJobOptions,
  UpdateJobResume,
  UpdateJobSnapshot,
  UpdateJobStep,
} from './update-job-types.js';
import { FINAL_UPDATE_STEPS } from './update-job-types.js';

export class UpdateJobProcess {
  readonly done: Promise<UpdateJobSnapshot>;
  private resolveDone: (s: UpdateJobSnapshot) => void = () => {};
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly sha256: string;
  private readonly header: TransferHeader;
  private readonly stallTimeoutMs: number;
  private readonly rebootTimeoutMs: number;
  private readonly soakMs: number;
  private readonly ackTimeoutMs: number;
  private readonly actor: string;
  private readonly startedAt: number;
  private readonly versionBefore: string | undefined;
  private step: UpdateJobStep = 'queued';
  private win: TransferWindow;
  private resumedFrom = 0;
  private firstAckAt: number | undefined;
  private firstAckOffset = 0;
  private deadline: number | undefined;
  private error: UpdateJobError | undefined;
  /** The last boot the job saw (saved with each step, so a restarted app tells a reboot the same). */
  private bootBefore: number | undefined;
  private ackTimer: ClockHandle | undefined;
  private stallTimer: ClockHandle | undefined;
  private stepTimer: ClockHandle | undefined;
  /** The telemetry checks' watch of the trial under way (none without checks, or off trial). */
  private watch: TrialWatch | undefined;

  constructor(private readonly options: UpdateJobOptions) {
    this.clock = options.runtime.clock;
    this.log = options.runtime.logger;
    this.sha256 = imageSha256(options.image);
    this.win = createTransferWindow(options.image.length, {
      // The device may ask for its own chunk size (`fw.chunk.N` in its hello, protocol §5.5).
      chunkBytes: options.chunkBytes ?? announcedChunkBytes(options.current?.capabilities ?? []),
      window: options.window,
    });
    this.header = {
      transferId: options.transferId,
      version: options.version,
      size: this.win.size,
      sha256: this.sha256,
      chunkBytes: this.win.chunkBytes,
    };
    this.ackTimeoutMs = options.ackTimeoutMs ?? 3000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 120_000;
    this.rebootTimeoutMs = options.rebootTimeoutMs ?? 60_000;
    this.soakMs = options.soakMs ?? 10_000;
    if (options.image.length < 1) throw new Error('update job: the image is empty');
    this.bootBefore = options.resume ? options.resume.boot : options.current?.boot;
    this.actor = options.actor ?? 'api';
    this.startedAt = options.resume?.startedAt ?? this.clock.wallNow();
    this.versionBefore = options.current?.firmware.version;
    this.done = new Promise<UpdateJobSnapshot>((r) => {
      this.resolveDone = r;
    });
  }

  private get size(): number {
    return this.win.size;
  }

  private final(): boolean {
    return FINAL_UPDATE_STEPS.includes(this.step);
  }

  snapshot(): UpdateJobSnapshot {
    const { deviceId, transferId, version } = this.options;
    const elapsed = this.firstAckAt === undefined ? 0 : (this.clock.now() - this.firstAckAt) / 1000;
    const moved = this.win.offset - this.firstAckOffset;
    return {
      deviceId,
      transferId,
      version,
      size: this.size,
      sha256: this.sha256,
      step: this.step,
      offset: this.win.offset,
      resumedFrom: this.resumedFrom,
      bytesPerSecond: elapsed > 0 && moved > 0 ? Math.round(moved / elapsed) : 0,
      resent: this.win.resent,
      deadline: this.deadline,
      error: this.error,
      boot: this.bootBefore,
      actor: this.actor,
      startedAt: this.startedAt,
      from: this.options.resume ? null : (this.versionBefore ?? null),
      trialChecks: (this.options.trialChecks ?? []).map((c) => c.text),
      trialMs: this.soakMs,
    };
  }

  private changed(): void {
    this.options.onChange?.(this.snapshot());
  }

  private clear(handle: ClockHandle | undefined): undefined {
    if (handle) this.clock.clearTimeout(handle);
    return undefined;
  }

  /** Moves to a step; `until` is the wall-clock deadline of a timed step (saved with it). */
  private to(next: UpdateJobStep, until?: number): void {
    const { deviceId, transferId, version } = this.options;
    this.step = next;
    this.deadline = until;
    this.stepTimer = this.clear(this.stepTimer);
    this.log.debug('firmware update step', { deviceId, transferId, step: next });
    if (this.final()) {
      const error = this.error;
      this.log.info('firmware update ended', {
        deviceId,
        step: next,
        version,
        ...(error ? { code: error.code, at: error.step } : {}),
      });
      this.ackTimer = this.clear(this.ackTimer);
      this.stallTimer = this.clear(this.stallTimer);
      this.changed();
      this.resolveDone(this.snapshot());
      return;
    }
    this.changed();
  }

  private fail(code: string, message: string): void {
    const { deviceId, transferId } = this.options;
    this.error = { step: this.step, code, message };
    this.log.warn('firmware update failed', { deviceId, transferId, step: this.step, code, message });
    this.to('failed');
  }

  /** Progress seen: the stall clock starts over. */
  private progressed(): void {
    this.stallTimer = this.clear(this.stallTimer);
    this.stallTimer = this.clock.setTimeout(
      () =>
        this.fail(
          'stalled',
          `no progress for ${this.stallTimeoutMs} ms at ${this.step} (${this.win.offset} of ${this.size} bytes)`,
        ),
      this.stallTimeoutMs,
    );
  }

  /** Says the current step to the device (again); the ack timer says it again if nothing comes. */
  private say(): void {
    this.ackTimer = this.clear(this.ackTimer);
    if (this.final()) return;
    if (this.step === 'transferring' && this.win.began) {
      this.win = backToHeld(this.win);
      this.pump();
    } else {
      const message = stepMessage(this.step, this.header);
      if (!message) return; // rebooting, on trial: the device speaks next
      this.options.channel.send(message);
    }
    this.armAckTimer();
  }

  private armAckTimer(): void {
    this.ackTimer = this.clear(this.ackTimer);
    this.ackTimer = this.clock.setTimeout(() => {
      if (this.step === 'transferring' && this.win.began) this.win = countResent(this.win);
      this.say();
    }, this.ackTimeoutMs);
  }

  /** Sends what the window lets out. */
  private pump(): void {
    const { channel, transferId, image } = this.options;
    for (let c = nextChunk(this.win); c; c = nextChunk(this.win)) {
      const data = image.subarray(c.start, c.end);
      if (!channel.send({ v: 1, type: 'fw.chunk', transferId, offset: c.start, data })) return; // no link: the next hello says fw.begin again
      this.win = chunkSent(this.win, c.end);
    }
  }

  /** A `fw.ack` from the device (other transfer ids are ignored). */
  ack(a: FwAckMessage): void {
    if (a.transferId !== this.options.transferId || this.final()) return;
    if (a.error && a.step !== 'chunk') {
      this.onRefusal(a, a.error);
      return;
    }
    switch (a.step) {
      case 'begin':
        this.onBeginAck(a.offset);
        return;
      case 'chunk':
        this.onChunkAck(a);
        return;
      case 'verify':
        if (this.step === 'verifying') this.next('applying');
        return;
      case 'apply':
        this.onApplyAck();
        return;
      case 'confirm':
        if (this.step === 'confirming') this.to('succeeded');
        return;
      case 'rollback':
        this.onRollbackAck();
        return;
    }
  }

  private onRefusal(a: FwAckMessage, refusal: StepReason): void {
    const plan = planRefusal(this.step, a);
    if (plan === 'rolledBack') {
      this.error = { step: this.step, code: refusal.code, message: refusal.message };
      this.to('rolledBack');
    } else if (plan === 'fail') this.fail(refusal.code, refusal.message);
  }

  private onBeginAck(ackOffset: number): void {
    if (this.step !== 'transferring') return;
    this.win = beginAcked(this.win, ackOffset);
    if (this.firstAckAt === undefined) {
      this.resumedFrom = this.win.offset;
      this.firstAckAt = this.clock.now();
      this.firstAckOffset = this.win.offset;
    }
    this.progressed();
    this.changed();
    if (this.win.offset >= this.size) {
      this.next('verifying');
      return;
    }
    this.say();
  }

  private onChunkAck(a: FwAckMessage): void {
    if (this.step !== 'transferring' || !this.win.began) return;
    if (a.error) {
      const again = a.error.code === 'unknownTransfer' ? transferForgotten(this.win) : undefined;
      if (again) {
        this.win = again;
        this.say();
        return;
      }
      this.fail(a.error.code, a.error.message);
      return;
    }
    const { window, verdict } = chunkAcked(this.win, a.offset);
    this.win = window;
    switch (verdict) {
      case 'shrunk':
        this.changed();
        this.pump();
        return;
      case 'gap':
        this.pump();
        return;
      case 'complete':
        this.progressed();
        this.changed();
        this.next('verifying');
        return;
      case 'advanced':
        this.progressed();
        this.changed();
        this.armAckTimer();
        this.pump();
        return;
      case 'ignored':
        return;
    }
  }

  private onApplyAck(): void {
    if (this.step !== 'applying') return;
    this.to('rebooting', this.clock.wallNow() + this.rebootTimeoutMs);
    this.stepTimer = this.clock.setTimeout(
      () =>
        this.fail('rebootTimeout', `no hello from a new boot within ${this.rebootTimeoutMs} ms of fw.apply`),
      this.rebootTimeoutMs,
    );
    this.ackTimer = this.clear(this.ackTimer);
    this.stallTimer = this.clear(this.stallTimer);
    this.changed();
  }

  private onRollbackAck(): void {
    if (this.step !== 'rollingBack') return;
    // The device reboots into the old slot: its next hello ends the job.
    this.ackTimer = this.clear(this.ackTimer);
    this.stallTimer = this.clear(this.stallTimer);
    this.deadline = this.clock.wallNow() + this.rebootTimeoutMs;
    this.stepTimer = this.clock.setTimeout(
      () => this.fail('rebootTimeout', `no hello after fw.rollback within ${this.rebootTimeoutMs} ms`),
      this.rebootTimeoutMs,
    );
  }

  private next(s: UpdateJobStep): void {
    this.to(s);
    this.progressed();
    this.say();
  }

  /** Every hello of the device. */
  hello(h: HelloMessage): void {
    if (this.final()) return;
    const newBoot = this.bootBefore !== undefined && h.boot !== this.bootBefore;
    this.bootBefore = h.boot;
    const plan = planHello(this.step, this.options.version, newBoot, h);
    switch (plan.kind) {
      case 'sayAgain':
        if (this.step === 'transferring') this.win = beginAgain(this.win);
        this.say();
        return;
      case 'startTrial':
        this.startTrial();
        return;
      case 'rolledBack':
        if (plan.why) this.error = { step: this.step, ...plan.why };
        this.to('rolledBack');
        return;
      case 'rollBack':
        this.rollBack(plan.why);
        return;
      case 'ignore':
        return;
    }
  }

  /**
   * On trial for `soakLeftMs`, with a fresh watch of its telemetry checks: a trial resumed after an
   * app restart judges only the readings from then on (a required metric must be read in the time
   * left), as does a trial started again.
   */
  private startTrial(soakLeftMs = this.soakMs): void {
    this.ackTimer = this.clear(this.ackTimer);
    this.stallTimer = this.clear(this.stallTimer);
    const checks = this.options.trialChecks ?? [];
    this.watch = checks.length > 0 ? createTrialWatch(checks) : undefined;
    this.to('onTrial', this.clock.wallNow() + soakLeftMs);
    this.stepTimer = this.clock.setTimeout(() => {
      const verdict = this.watch?.verdict();
      this.watch = undefined;
      if (verdict !== undefined) {
        this.rollBack({ code: 'unhealthy', message: verdict });
        return;
      }
      this.next('confirming');
    }, soakLeftMs);
  }

  /** A telemetry message: a reading past a limit of the trial rolls back at once. */
  telemetry(values: Readonly<Record<string, number>>, at: number): void {
    if (this.step !== 'onTrial' || this.watch === undefined) return;
    const crossed = this.watch.observe(values, at);
    if (crossed === undefined) return;
    this.watch = undefined;
    this.rollBack({ code: 'unhealthy', message: crossed });
  }

  private rollBack(why: StepReason): void {
    this.error = { step: this.step, code: why.code, message: why.message };
    this.next('rollingBack');
  }

  /** After an app restart: the step the job was at, told again, with what is left of its time. */
  private resume(r: UpdateJobResume): void {
    const { deviceId, transferId, current } = this.options;
    this.log.info('firmware update resumed', { deviceId, transferId, step: r.step });
    const { plan, replayHello } = planResume(r, current, this.options.version, this.clock.wallNow());
    // Past the transfer (verify onwards), the device holds the whole image: the views show 100 %.
    if (plan.kind === 'say' || plan.kind === 'awaitReboot' || plan.kind === 'trial')
      this.win = heldAll(this.win);
    switch (plan.kind) {
      case 'transfer':
        this.next('transferring'); // fw.begin answers what the device holds
        break;
      case 'say':
        this.next(plan.step);
        break;
      case 'awaitReboot':
        this.to('rebooting', this.clock.wallNow() + plan.leftMs);
        this.stepTimer = this.clock.setTimeout(
          () =>
            this.fail(
              'rebootTimeout',
              `no hello from a new boot within ${this.rebootTimeoutMs} ms of fw.apply`,
            ),
          plan.leftMs,
        );
        this.changed();
        break;
      case 'trial':
        if (plan.boot !== undefined) this.bootBefore = plan.boot;
        this.startTrial(plan.soakLeftMs);
        break;
      case 'none':
        break;
    }
    // The device may have rebooted while the app was away: its last hello tells.
    if (replayHello && current) this.hello(current);
  }

  start(): void {
    if (this.step !== 'queued') return;
    const { deviceId, transferId, version } = this.options;
    if (this.options.resume) {
      this.resume(this.options.resume);
      return;
    }
    this.log.info('firmware update started', {
      deviceId,
      transferId,
      version,
      from: this.versionBefore ?? null,
      size: this.size,
    });
    const fw = this.options.current?.firmware;
    if (fw?.version === version && fw.confirmed === false) {
      // The image runs already, on trial (an earlier job ended or was lost after the apply):
      // no second transfer (the device would answer busy); the trial runs and is confirmed.
      this.log.info('firmware update: the image is on trial already; confirming after the trial', {
        deviceId,
        version,
      });
      this.win = heldAll(this.win);
      this.startTrial();
      return;
    }
    this.next('transferring');
  }

  /** Cancels before `fw.apply`; refused (`tooLate`) after it, when only a rollback can undo it. */
  cancel(): Result<UpdateJobSnapshot, Failure<'tooLate' | 'finished'>> {
    const { deviceId } = this.options;
    if (this.final()) return err('finished', `the update of ${deviceId} has already ended (${this.step})`);
    if (this.step !== 'queued' && this.step !== 'transferring' && this.step !== 'verifying')
      return err(
        'tooLate',
        `the image is applied on ${deviceId} (${this.step}); only a rollback can undo it`,
      );
    this.error = { step: this.step, code: 'cancelled', message: 'cancelled by the operator' };
    this.to('cancelled');
    return ok(this.snapshot());
  }
}
