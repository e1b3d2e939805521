/**
 * The host's firmware updates, one job per device at a time ({@link createUpdateJob}), fed by the
 * link hub: its `onFirmwareAck` and `onDeviceHello` seams route here, and jobs send through the
 * hub on whichever link the device has (MQTT `fw` topic or serial frames alike).
 *
 * A device that never said it has the `fw` capability (Homie, Sparkplug and Modbus devices, a
 * protocol device without it) is refused `notSupported`: no job is made up for it.
 *
 * @example
 * const updates = createFirmwareUpdates({ runtime, hub: () => links.hub });
 * await links.attach(fleet, { onFirmwareAck: updates.ack, onDeviceHello: updates.hello });
 * const r = updates.start('pump-7', { image, version: '1.1.0' });
 */
import { createHash } from 'node:crypto';
import { err, type Failure, ok, type Result } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { LinkHub } from '../transports/link-hub.js';
import type { FwAckMessage, HelloMessage } from '../transports/protocol.js';
import type { UpdateJob, UpdateJobOptions, UpdateJobResume, UpdateJobSnapshot } from './update-job.js';
import { createUpdateJob, FINAL_UPDATE_STEPS } from './update-job.js';

export type UpdateStartErrorCode = 'unknownDevice' | 'notSupported' | 'busy' | 'alreadyRunning';

/** Job settings the caller may choose (timeouts, window, soak, health). */
export type UpdateJobSettings = Omit<
  UpdateJobOptions,
  'runtime' | 'channel' | 'deviceId' | 'image' | 'version' | 'transferId' | 'current' | 'onChange'
>;

export interface FirmwareUpdatesOptions {
  readonly runtime: Pick<Runtime, 'clock' | 'logger'>;
  /** The link hub (there once the links are attached). */
  readonly hub: () => Pick<LinkHub, 'send' | 'device'> | undefined;
  readonly defaults?: UpdateJobSettings;
  /** Every change of a job, for live views and persistence. */
  readonly onChange?: (snapshot: UpdateJobSnapshot) => void;
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
  ): Result<UpdateJob, Failure<UpdateStartErrorCode>>;
  /** Continues a job saved before the app restarted, at its step (no capability check: it ran). */
  restore(
    deviceId: string,
    what: {
      readonly image: Uint8Array;
      readonly version: string;
      readonly actor: string;
      readonly resume: UpdateJobResume;
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
}

/** The same image gets the same transfer id on every device and after every restart. */
const transferIdOf = (image: Uint8Array) =>
  `fw-${createHash('sha256').update(image).digest('hex').slice(0, 16)}`;

export function createFirmwareUpdates(options: FirmwareUpdatesOptions): FirmwareUpdates {
  const jobs = new Map<string, UpdateJob>();
  const running = (j: UpdateJob | undefined) =>
    j !== undefined && !FINAL_UPDATE_STEPS.includes(j.snapshot().step);

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
      const job = createUpdateJob({
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
        ...(options.onChange ? { onChange: options.onChange } : {}),
      });
      jobs.set(deviceId, job);
      job.start();
      return ok(job);
    },
    restore(deviceId, { image, version, actor, resume }) {
      const job = createUpdateJob({
        ...options.defaults,
        runtime: options.runtime,
        channel: { send: (m) => options.hub()?.send(deviceId, m) ?? false },
        deviceId,
        image,
        version,
        transferId: transferIdOf(image),
        current: options.hub()?.device(deviceId)?.hello,
        actor,
        resume,
        ...(options.onChange ? { onChange: options.onChange } : {}),
      });
      jobs.set(deviceId, job);
      job.start();
      return job;
    },
    cancel(deviceId) {
      const job = jobs.get(deviceId);
      if (!job) return err('noJob', `no firmware update of '${deviceId}'`);
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
  };
}
