/**
 * The host's firmware updates, one job per device at a time ({@link createUpdateJob}), fed by the
 * link hub: its `onFirmwareAck` and `onDeviceHello` seams route here, and jobs send through the
 * hub on whichever link the device has (MQTT `fw` topic or serial frames alike).
 *
 * A device that never said it has the `fw` capability (Homie, Sparkplug and Modbus devices, a
 * protocol device without it) is refused `notSupported`: no job is made up for it.
 *
 * The device's command circuit breaker (src/devices/command-guards.ts) guards jobs too. While it is
 * open (the device's commands kept timing out) a job is refused at once, `circuitOpen` with
 * `retryAt` (the next probe time), and no byte is sent: a transfer into a device that does not
 * answer commands would only sit out its stall timeout, and a job must not be queued into a dead
 * device any more than a command. Refused rather than held until the probe: the caller decides
 * whether to wait (a rollout waits for `retryAt` without spending an attempt, rollout-process.ts;
 * an operator sees the reason at once). Once the breaker is half-open the job may go as the probe.
 * Every job's end feeds the breaker ({@link breakerEnd}): the device answered (closes it), or the
 * transfer timed out (a failure, which may open it).
 *
 * @example
 * const updates = createFirmwareUpdates({ runtime, hub: () => links.hub });
 * await links.attach(fleet, { onFirmwareAck: updates.ack, onDeviceHello: updates.hello });
 * fleet.observe((a) => a.type === 'telemetry' && updates.telemetry(a.deviceId, a.values, a.at));
 * const r = updates.start('pump-7', { image, version: '1.1.0', settings: { trialChecks } });
 */
import type { BreakerOutcome, CommandGuards } from '../devices/command-guards.js';
import { type Failure, ok, type Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { LinkHub } from '../transports/link-hub.js';
import type { FwAckMessage, HelloMessage } from '../transports/protocol.js';
import { imageSha256 } from './image-hash.js';
import type { TrialCheck } from './trial-checks.js';
import type { UpdateJob, UpdateJobOptions, UpdateJobResume, UpdateJobSnapshot } from './update-job.js';
import { createUpdateJob, FINAL_UPDATE_STEPS } from './update-job.js';

export type UpdateStartErrorCode =
  | 'unknownDevice'
  | 'notSupported'
  | 'busy'
  | 'alreadyRunning'
  | 'circuitOpen';

/** Why a job did not start; `retryAt` (wall ms) with `circuitOpen`: when the breaker lets a probe go. */
export interface UpdateStartFailure extends Failure<UpdateStartErrorCode> {
  readonly retryAt?: number;
}

/** The device's command circuit breaker, as update jobs use it (src/devices/command-guards.ts). */
export type FirmwareBreaker = Pick<CommandGuards, 'beginWork' | 'endWork'>;

/** Job settings the caller may choose (timeouts, window, trial and its telemetry checks). */
export type UpdateJobSettings = Omit<
  UpdateJobOptions,
  'runtime' | 'channel' | 'deviceId' | 'image' | 'version' | 'transferId' | 'current' | 'onChange'
>;

/**
 * The settings of a job's trial: its length (`soakMs`) and telemetry checks, each only when given
 * (undefined when neither is: the job's defaults).
 *
 * @example
 * updates.start(id, { image, version, settings: trialSettings(60_000, checks) });
 */
export function trialSettings(
  trialMs: number | undefined,
  checks: readonly TrialCheck[] | undefined,
): UpdateJobSettings | undefined {
  if (trialMs === undefined && (checks === undefined || checks.length === 0)) return undefined;
  return {
    ...(trialMs !== undefined ? { soakMs: trialMs } : {}),
    ...(checks !== undefined && checks.length > 0 ? { trialChecks: checks } : {}),
  };
}

export interface FirmwareUpdatesOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger'>;
  /** The link hub (there once the links are attached). */
  readonly hub: () => Pick<LinkHub, 'send' | 'device'> | undefined;
  readonly defaults?: UpdateJobSettings;
  /** Every change of a job, for live views and persistence. */
  readonly onChange?: (snapshot: UpdateJobSnapshot) => void;
  /** The devices' circuit breakers (the fleet's command guards); none: jobs are not guarded. */
  readonly breaker?: FirmwareBreaker;
}

export interface FirmwareUpdates {
  start(
    deviceId: string,
    what: {
      readonly image: Uint8Array;
      readonly version: string;
      readonly settings?: UpdateJobSettings;
      readonly actor?: string;
    },
  ): Result<UpdateJob, UpdateStartFailure>;
  /** Continues a job saved before the app restarted, at its step (no capability check: it ran). */
  restore(
    deviceId: string,
    what: {
      readonly image: Uint8Array;
      readonly version: string;
      readonly actor: string;
      readonly resume: UpdateJobResume;
      /** Over the defaults, as for start: the host passes the trial and checks saved with the job. */
      readonly settings?: UpdateJobSettings;
    },
  ): UpdateJob;
  cancel(deviceId: string): Result<UpdateJobSnapshot, Failure<'noJob' | 'tooLate' | 'finished'>>;
  /** The device's current or last job. */
  get(deviceId: string): UpdateJobSnapshot | undefined;
  /** The device's current or last job itself (to follow it to its end). */
  job(deviceId: string): UpdateJob | undefined;
  list(): UpdateJobSnapshot[];
  /** For the link hub's `onFirmwareAck`. */
  ack(deviceId: string, ack: FwAckMessage): void;
  /** For the link hub's `onDeviceHello`. */
  hello(deviceId: string, hello: HelloMessage): void;
  /**
   * A telemetry message of the device (the fleet's `telemetry` activity), for the telemetry
   * checks of its job's trial; one Map lookup when none of its jobs is on trial with checks.
   */
  telemetry(deviceId: string, values: Readonly<Record<string, number>>, at: number): void;
}

/**
 * How a job's end counts for the device's breaker, in a command's terms: the device answered
 * (`succeeded`, or `failed` with its own code, a rollback included: it is alive), or it did not
 * (`timedOut`: the transfer or a step stalled, or no hello came after a reboot); `cancelled` is
 * neutral.
 */
export function breakerEnd(final: UpdateJobSnapshot): Omit<BreakerOutcome, 'commandId'> {
  const error = final.error ? { code: final.error.code, message: final.error.message } : undefined;
  if (final.step === 'succeeded') return { status: 'succeeded' };
  if (final.step === 'cancelled') return { status: 'cancelled' };
  if (error && (error.code === 'stalled' || error.code === 'rebootTimeout'))
    return { status: 'timedOut', error };
  return error ? { status: 'failed', error } : { status: 'succeeded' };
}

const err = <C extends UpdateStartErrorCode>(code: C, message: string, retryAt?: number) => ({
  ok: false as const,
  error: retryAt === undefined ? { code, message } : { code, message, retryAt },
});

/** The same image gets the same transfer id on every device and after every restart. */
const transferIdOf = (image: Uint8Array) => `fw-${imageSha256(image).slice(0, 16)}`;

export function createFirmwareUpdates(options: FirmwareUpdatesOptions): FirmwareUpdates {
  const jobs = new Map<string, UpdateJob>();
  /** The jobs on trial with telemetry checks, by device: the only ones telemetry goes to. */
  const onTrial = new Map<string, UpdateJob>();
  /** Every change of a job: kept in `onTrial` while on trial with checks, then to the caller's. */
  const onChange = (deviceId: string, job: () => UpdateJob | undefined) => (s: UpdateJobSnapshot) => {
    const j = job();
    if (s.step === 'onTrial' && s.trialChecks.length > 0 && j) onTrial.set(deviceId, j);
    else if (onTrial.get(deviceId) === j) onTrial.delete(deviceId);
    options.onChange?.(s);
  };
  const running = (j: UpdateJob | undefined) =>
    j !== undefined && !FINAL_UPDATE_STEPS.includes(j.snapshot().step);
  let works = 0;
  /** The job's end goes to the breaker, under the id it began with (the probe's, when it was one). */
  const feedBreaker = (deviceId: string, job: UpdateJob, workId: string) => {
    const breaker = options.breaker;
    if (breaker) void job.done.then((final) => breaker.endWork(deviceId, workId, breakerEnd(final)));
  };

  return {
    start(deviceId, { image, version, settings, actor }) {
      const hub = options.hub();
      const device = hub?.device(deviceId);
      if (!hub || !device?.hello)
        return err('unknownDevice', `no device '${deviceId}' has said hello on a link of this app`);
      if (!device.hello.capabilities.includes('fw'))
        return err(
          'notSupported',
          `firmware update not supported: '${deviceId}' does not announce the 'fw' capability`,
        );
      if (running(jobs.get(deviceId)))
        return err('busy', `'${deviceId}' is being updated already (${jobs.get(deviceId)?.snapshot().step})`);
      // Nothing to do, and the device could not show it: an apply of the running image reboots nothing.
      if (device.hello.firmware.version === version && device.hello.firmware.confirmed !== false)
        return err('alreadyRunning', `'${deviceId}' runs ${version} already (confirmed)`);
      // The same image on the same device gets the same transfer id, so a new job resumes.
      const transferId = transferIdOf(image);
      const workId = `${transferId}:${++works}`;
      const refused = options.breaker?.beginWork(deviceId, workId);
      if (refused)
        return err(
          'circuitOpen',
          `not updating '${deviceId}': ${refused.message}`,
          refused.retryAt ?? options.runtime.clock.wallNow(),
        );
      const job: UpdateJob = createUpdateJob({
        ...options.defaults,
        ...settings,
        runtime: options.runtime,
        channel: { send: (m) => options.hub()?.send(deviceId, m) ?? false },
        deviceId,
        image,
        version,
        transferId,
        current: device.hello,
        ...(actor ? { actor } : {}),
        onChange: onChange(deviceId, () => job),
      });
      jobs.set(deviceId, job);
      feedBreaker(deviceId, job, workId);
      job.start();
      return ok(job);
    },
    restore(deviceId, { image, version, actor, resume, settings }) {
      const job: UpdateJob = createUpdateJob({
        ...options.defaults,
        ...settings,
        runtime: options.runtime,
        channel: { send: (m) => options.hub()?.send(deviceId, m) ?? false },
        deviceId,
        image,
        version,
        transferId: transferIdOf(image),
        current: options.hub()?.device(deviceId)?.hello,
        actor,
        resume,
        onChange: onChange(deviceId, () => job),
      });
      jobs.set(deviceId, job);
      // A job continued after a restart was started before (unguarded now); its end still counts.
      feedBreaker(deviceId, job, `${job.snapshot().transferId}:${++works}`);
      job.start();
      return job;
    },
    cancel(deviceId) {
      const job = jobs.get(deviceId);
      if (!job)
        return { ok: false, error: { code: 'noJob', message: `no firmware update of '${deviceId}'` } };
      return job.cancel();
    },
    get: (deviceId) => jobs.get(deviceId)?.snapshot(),
    job: (deviceId) => jobs.get(deviceId),
    list: () => [...jobs.values()].map((j) => j.snapshot()),
    ack(deviceId, ack) {
      jobs.get(deviceId)?.ack(ack);
    },
    hello(deviceId, hello) {
      jobs.get(deviceId)?.hello(hello);
    },
    telemetry(deviceId, values, at) {
      onTrial.get(deviceId)?.telemetry(values, at);
    },
  };
}
