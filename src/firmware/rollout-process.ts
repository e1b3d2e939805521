/**
 * The rollout process (what it does: rollout.ts, which makes it): starts the jobs its waves allow
 * inside the maintenance window, follows each to its end, retries, pauses or aborts past the
 * failure bounds, and picks up after an app restart. Its decisions are rollout-plan.ts's and
 * maintenance-window.ts's, both pure.
 *
 * @example
 * const r = new RolloutProcess(options);
 * r.start(); await r.done;
 */
import type { Result } from '../lib/result.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/runtime.js';
import { trialSettings } from './firmware-updates.js';
import { formatMaintenanceWindow, maintenanceWindowAt } from './maintenance-window.js';
import type { RolloutDeviceEntry } from './rollout-plan.js';
import {
  countDevices,
  DEFAULT_WAVES,
  devicesView,
  initialDevices,
  pastFailureBounds,
  waveConcurrency,
  waveEnds,
  waveOutcome,
} from './rollout-plan.js';
import type {
  RolloutJob,
  RolloutJobRefusal,
  RolloutOptions,
  RolloutPolicy,
  RolloutSnapshot,
  RolloutState,
  RolloutWave,
} from './rollout-types.js';
import type { TrialCheck } from './trial-checks.js';
import { parseTrialChecks } from './trial-checks.js';

type Reason = { code: string; message: string };

export class RolloutProcess {
  readonly done: Promise<RolloutSnapshot>;
  private resolveDone: (s: RolloutSnapshot) => void = () => {};
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly policy: RolloutPolicy;
  private readonly waves: readonly RolloutWave[];
  private readonly order: readonly string[];
  private readonly ends: readonly number[];
  private readonly successThreshold: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;
  /** The policy's telemetry checks, parsed once: every job of the rollout gets them. */
  private readonly trialChecks: readonly TrialCheck[];
  private readonly createdAt: number;
  private readonly actor: string;
  private readonly devices: Map<string, RolloutDeviceEntry>;
  private state: RolloutState;
  private reason: string | undefined;
  private wave: number;
  private started = false;
  private soaking = false;
  /** Wall ms the soak ends: while soaking, and from a rollout restored during its soak. */
  private soakEndsAt: number | undefined;
  private windowOpensAt: number | undefined;
  private windowTimer = false;
  /** The wave whose success threshold the operator waived by resuming. */
  private waived = -1;
  private pumping = false;
  private pumpAgain = false;

  constructor(private readonly options: RolloutOptions) {
    this.log = options.runtime.logger;
    this.clock = options.runtime.clock;
    this.policy = options.policy ?? {};
    this.waves = this.policy.waves ?? DEFAULT_WAVES;
    this.order = [...new Set(options.devices)];
    this.ends = waveEnds(this.order.length, this.waves);
    this.successThreshold = this.policy.successThreshold ?? 1;
    this.retries = this.policy.retries ?? 1;
    this.retryDelayMs = this.policy.retryDelayMs ?? 5000;
    const checks = parseTrialChecks(this.policy.trialChecks ?? []);
    // Checked before (rolloutCreate, a saved rollout's schema): a bad one here is a caller's bug.
    if (!checks.ok) throw new RangeError(`rollout ${options.id}: ${checks.error.message}`);
    this.trialChecks = checks.value;
    this.createdAt = options.restore?.createdAt ?? this.clock.wallNow();
    this.actor = options.actor ?? 'api';
    this.devices = initialDevices(this.order, this.ends, options.restore?.devices);
    this.state = options.restore?.state ?? 'running';
    this.reason = options.restore?.reason;
    this.wave = options.restore?.wave ?? 0;
    this.soakEndsAt = options.restore?.soakEndsAt;
    this.done = new Promise<RolloutSnapshot>((r) => {
      this.resolveDone = r;
    });
  }

  snapshot(): RolloutSnapshot {
    const { id, version, sha256 } = this.options;
    return {
      id,
      version,
      sha256,
      state: this.state,
      reason: this.reason,
      window: this.policy.window ? formatMaintenanceWindow(this.policy.window) : undefined,
      windowOpensAt: this.windowOpensAt,
      ...(this.soakEndsAt !== undefined ? { soakEndsAt: this.soakEndsAt } : {}),
      ...(this.trialChecks.length > 0 ? { trialChecks: this.trialChecks.map((c) => c.text) } : {}),
      wave: this.wave,
      waveEnds: this.ends,
      order: this.order,
      devices: devicesView(this.devices),
      counts: countDevices(this.devices.values()),
      createdBy: this.actor,
      createdAt: this.createdAt,
    };
  }

  /** Another instance runs it now (see {@link release}). */
  private released = false;

  private changed(): void {
    if (this.released) return;
    this.options.onChange?.(this.snapshot());
  }

  release(): void {
    this.released = true;
  }

  private end(final: RolloutState, why?: string): void {
    this.state = final;
    this.reason = why;
    this.log.info('rollout ended', {
      rollout: this.options.id,
      state: final,
      ...(why ? { reason: why } : {}),
    });
    this.changed();
    this.resolveDone(this.snapshot());
  }

  private inWave(w: number): [string, RolloutDeviceEntry][] {
    return [...this.devices.entries()].filter(([, d]) => d.wave === w);
  }

  /** Starts what the wave allows; re-entered (a device done at once), it runs once more after. */
  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpOnce();
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  /** Whether jobs may start now; outside the window, a pump is set for its next opening. */
  private windowAllows(): boolean {
    if (!this.policy.window) return true;
    const at = maintenanceWindowAt(this.policy.window, this.clock.wallNow());
    if (at.opensAt !== this.windowOpensAt) {
      this.windowOpensAt = at.opensAt;
      this.changed();
    }
    if (at.open) return true;
    if (!this.windowTimer && at.opensAt !== undefined) {
      this.windowTimer = true;
      this.clock.setTimeout(
        () => {
          this.windowTimer = false;
          this.pump();
        },
        Math.max(1000, at.opensAt - this.clock.wallNow()),
      );
    }
    return false;
  }

  private pumpOnce(): void {
    if (this.released || this.state !== 'running' || this.soaking) return;
    const here = this.inWave(this.wave);
    let running = here.filter(([, d]) => d.state === 'updating').length;
    const mayStart = here.some(([, d]) => d.state === 'pending') ? this.windowAllows() : true;
    for (const [deviceId, d] of here) {
      if (!mayStart || running >= waveConcurrency(this.waves, this.wave)) break;
      if (d.state !== 'pending') continue;
      this.launch(deviceId, d);
      running++;
    }
    const outcome = waveOutcome(
      here.map(([, d]) => d.state),
      {
        wave: this.wave,
        waves: this.ends.length,
        successThreshold: this.successThreshold,
        waived: this.waived,
      },
    );
    if (outcome.kind === 'open') return;
    if (outcome.kind === 'belowThreshold') this.pauseFor(outcome.reason);
    else if (outcome.kind === 'completed') this.end('completed');
    else this.nextWave();
  }

  /**
   * The wave is over and went well: the next one starts, after the soak if there is one. A soak
   * under way when the app stopped goes on with what was left of it (its end is saved).
   */
  private nextWave(): void {
    const soakMs = this.policy.soakMs ?? 0;
    const next = () => {
      this.soaking = false;
      this.soakEndsAt = undefined;
      if (this.state !== 'running' && this.state !== 'paused') return; // ended while it soaked
      this.wave++;
      this.changed();
      this.pump();
    };
    if (soakMs <= 0) {
      next();
      return;
    }
    const now = this.clock.wallNow();
    this.soakEndsAt ??= now + soakMs;
    this.soaking = true;
    this.changed();
    this.clock.setTimeout(next, Math.max(0, this.soakEndsAt - now));
  }

  private launch(deviceId: string, d: RolloutDeviceEntry): void {
    const { id, image, version } = this.options;
    if (this.options.runningVersion?.(deviceId) === version) {
      this.alreadyRunning(d);
      return;
    }
    d.attempts++;
    const settings = trialSettings(this.policy.trialMs, this.trialChecks);
    const r = this.options.updates.start(deviceId, {
      image,
      version,
      actor: `rollout:${id}`,
      ...(settings ? { settings } : {}),
    });
    if (!('then' in r)) {
      this.jobStarted(deviceId, d, r);
      return;
    }
    // Another instance runs the device (a cluster): its answer comes later. The device counts as
    // updating meanwhile, so the wave's concurrency holds.
    d.state = 'updating';
    d.step = 'queued';
    this.changed();
    void r.then(
      (answer) => this.jobStarted(deviceId, d, answer),
      (error: unknown) =>
        this.jobStarted(deviceId, d, { ok: false, error: { code: 'startFailed', message: String(error) } }),
    );
  }

  /** What the start of a device's job answered. */
  private jobStarted(
    deviceId: string,
    d: RolloutDeviceEntry,
    r: Result<RolloutJob, RolloutJobRefusal>,
  ): void {
    if (this.state === 'cancelled' || this.state === 'aborted') {
      // Ended while the answer was on its way: the job it started is cancelled too.
      if (r.ok) this.options.updates.cancel(deviceId);
      if (d.state === 'updating') d.state = 'skipped';
      this.changed();
      return;
    }
    if (!r.ok && r.error.code === 'alreadyRunning') {
      this.alreadyRunning(d);
      return;
    }
    if (!r.ok && (r.error.code === 'circuitOpen' || r.error.notTried)) {
      this.waitForBreaker(deviceId, d, r.error);
      return;
    }
    if (!r.ok) {
      d.step = undefined; // no job ran (a remote start said `queued` while it was asked)
      this.settle(
        deviceId,
        d,
        { code: r.error.code, message: r.error.message },
        r.error.code === 'notSupported',
      );
      return;
    }
    d.state = 'updating';
    d.step = r.value.snapshot().step;
    this.changed();
    this.watch(deviceId, d, r.value);
  }

  /**
   * The device's command breaker is open (firmware-updates.ts), or its owner in a cluster cannot be
   * reached now (`notTried`): nothing was tried on the device, so no attempt is spent; the device waits until the breaker lets a probe go (`retryAt`), and the
   * job started then is that probe. Spending the rollout's retries (by default one, 5 s later) on
   * refusals would fail the device before the breaker's cool-down (30 s) ever ended; a device that
   * stays dead still fails, since each probe job that times out counts as an attempt. At least 1 s:
   * another command may have taken the probe, and retryAt is then already past.
   */
  private waitForBreaker(
    deviceId: string,
    d: RolloutDeviceEntry,
    refusal: Reason & { retryAt?: number },
  ): void {
    d.attempts--;
    d.error = { code: refusal.code, message: refusal.message };
    d.state = 'waitingRetry';
    this.log.info(
      refusal.code === 'circuitOpen'
        ? 'rollout: device waits for its circuit breaker'
        : 'rollout: device waits: its job could not be asked for now',
      { rollout: this.options.id, deviceId, code: refusal.code, retryAt: refusal.retryAt },
    );
    this.changed();
    const waitMs = Math.max(1000, (refusal.retryAt ?? 0) - this.clock.wallNow());
    this.clock.setTimeout(() => {
      if (d.state !== 'waitingRetry') return;
      d.state = 'pending';
      this.pump();
    }, waitMs);
  }

  /** The device runs the rollout's version already: not flashed again. */
  private alreadyRunning(d: RolloutDeviceEntry): void {
    d.state = 'succeeded';
    d.step = 'alreadyRunning';
    this.changed();
    this.pump();
  }

  /** Follows a device's job to its end. */
  private watch(deviceId: string, d: RolloutDeviceEntry, job: RolloutJob): void {
    job.onStep?.((step) => {
      if (d.state !== 'updating' || d.step === step) return;
      d.step = step;
      this.changed();
    });
    void job.done.then((final) => {
      d.step = final.step;
      if (final.step === 'succeeded') {
        d.state = 'succeeded';
        d.error = undefined;
        this.changed();
        this.pump();
        return;
      }
      if (final.step === 'cancelled' && this.state === 'cancelled') return;
      this.settle(
        deviceId,
        d,
        final.error
          ? { code: final.error.code, message: final.error.message }
          : { code: final.step, message: final.step },
        false,
      );
    });
  }

  /** A failed attempt: retried later, or failed for good (then the failure bounds are checked). */
  private settle(deviceId: string, d: RolloutDeviceEntry, error: Reason, skip: boolean): void {
    d.error = error;
    if (skip) {
      d.state = 'skipped';
      this.changed();
      this.pump();
      return;
    }
    if (d.attempts <= this.retries) {
      d.state = 'waitingRetry';
      this.changed();
      this.clock.setTimeout(() => {
        if (d.state !== 'waitingRetry') return;
        d.state = 'pending';
        this.pump();
      }, this.retryDelayMs * d.attempts);
      return;
    }
    d.state = 'failed';
    this.log.warn('rollout: device failed', {
      rollout: this.options.id,
      deviceId,
      code: error.code,
      message: error.message,
    });
    this.changed();
    const past = pastFailureBounds(countDevices(this.devices.values()), this.policy);
    if (past !== undefined && this.state === 'running') {
      if (this.policy.onFailure === 'abort') {
        this.abortRunning();
        this.end('aborted', past);
        return;
      }
      this.pauseFor(past);
      return;
    }
    this.pump();
  }

  private pauseFor(why: string): void {
    this.state = 'paused';
    this.reason = why;
    this.log.warn('rollout paused', { rollout: this.options.id, reason: why });
    this.changed();
  }

  private abortRunning(): void {
    for (const [deviceId, d] of this.devices) {
      if (d.state === 'updating') this.options.updates.cancel(deviceId);
      if (d.state === 'pending' || d.state === 'waitingRetry') d.state = 'skipped';
    }
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.options.restore) {
      this.continueRestored();
      return;
    }
    const { id, version } = this.options;
    this.log.info('rollout started', {
      rollout: id,
      version,
      devices: this.order.length,
      waves: this.ends.length,
      actor: this.actor,
    });
    this.changed();
    this.pump();
  }

  /** A rollout restored after an app restart: jobs that ran then continue (restored with it); the rest start again. */
  private continueRestored(): void {
    for (const [deviceId, d] of this.devices) {
      if (d.state === 'waitingRetry') d.state = 'pending';
      if (d.state !== 'updating') continue;
      const job = this.options.findJob?.(deviceId);
      if (job) this.watch(deviceId, d, job);
      else {
        d.state = 'pending';
        d.attempts = Math.max(0, d.attempts - 1);
      }
    }
    this.log.info('rollout resumed', { rollout: this.options.id, state: this.state, wave: this.wave + 1 });
    this.changed();
    if (this.state === 'running') this.pump();
    else if (this.state !== 'paused') this.resolveDone(this.snapshot());
  }

  pause(why = 'paused by the operator'): void {
    if (this.state === 'running') this.pauseFor(why);
  }

  resume(): void {
    if (this.state !== 'paused') return;
    this.state = 'running';
    this.reason = undefined;
    // The operator has seen why it paused: this wave's threshold no longer holds it back.
    this.waived = this.wave;
    this.changed();
    this.pump();
  }

  cancel(): void {
    if (this.state === 'completed' || this.state === 'aborted' || this.state === 'cancelled') return;
    this.state = 'cancelled';
    this.abortRunning();
    this.end('cancelled', 'cancelled by the operator');
  }
}
