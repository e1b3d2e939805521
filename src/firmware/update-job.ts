/**
 * One device's firmware update over the native protocol (docs/protocol.md §5), the host side of
 * the device's A/B slots:
 *
 *   transferring (fw.begin, then a window of fw.chunk from the offset the device acknowledges;
 *   the window goes back to the acknowledged offset when no ack comes) → verifying → applying →
 *   rebooting (waits for a hello with a new boot) → onTrial (the new image runs unconfirmed for
 *   `soakMs`; healthy = online, no further reboot, and its telemetry passes the `trialChecks`) →
 *   confirming → succeeded.
 *   Or: rollingBack → rolledBack (unhealthy on trial, or the device's bootloader went back by
 *   itself: its next hello runs the old version); or failed, with the step and the device's code.
 *
 * Resumable: every `fw.*` message is idempotent and the device keeps what it received across a
 * reboot or a lost link, so after a link drop, a device reboot or a new job for the same image
 * and `transferId`, `fw.begin` answers with the offset to go on from — never zero again.
 * Sends while the device is away fail; the job waits for its next hello and says `fw.begin`
 * again. A job that makes no progress for `stallTimeoutMs` fails with `stalled`.
 *
 * This file is the job's entry: its types (update-job-types.ts) are re-exported from here; the
 * pure parts are the step planner (update-job-plan.ts) and the transfer window
 * (transfer-window.ts); the process with its timers is update-job-process.ts.
 *
 * @example
 * const job = createUpdateJob({ runtime, channel: { send: (m) => hub.send(id, m) }, deviceId: id,
 *   image, version: '1.1.0', transferId: 'fw-1', current: hub.device(id)?.hello });
 * job.start(); // then feed it: job.ack(ack), job.hello(hello)
 * const final = await job.done; // { step: 'succeeded', … }
 */
import { UpdateJobProcess } from './update-job-process.js';
import type { UpdateJob, UpdateJobOptions } from './update-job-types.js';

export type {
  FirmwareChannel,
  UpdateJob,
  UpdateJobError,
  UpdateJobErrorCode,
  UpdateJobOptions,
  UpdateJobResume,
  UpdateJobSnapshot,
  UpdateJobStep,
} from './update-job-types.js';
export { FINAL_UPDATE_STEPS } from './update-job-types.js';

/** Makes the job (it starts on `start()`); throws when the image is empty. */
export function createUpdateJob(options: UpdateJobOptions): UpdateJob {
  const job = new UpdateJobProcess(options);
  return {
    deviceId: options.deviceId,
    start: () => job.start(),
    ack: (ack) => job.ack(ack),
    hello: (hello) => job.hello(hello),
    telemetry: (values, at) => job.telemetry(values, at),
    cancel: () => job.cancel(),
    snapshot: () => job.snapshot(),
    done: job.done,
  };
}
