/**
 * The update job's step planner, pure (docs/protocol.md §5): what each step says to the device,
 * what a device's refusal, a hello or an app restart moves the job to. The job
 * (update-job-process.ts) acts on these plans with its timers; the chunks are transfer-window.ts's.
 *
 * @example
 * const plan = planHello('rebooting', '1.1.0', true, hello);
 * // { kind: 'startTrial' } when the new boot runs 1.1.0 unconfirmed
 */
import type { FwAckMessage, FwStep, HelloMessage, Message } from '../transports/protocol.js';
import type { UpdateJobResume, UpdateJobStep } from './update-job-types.js';

/** The fw.* message each waiting step says, so a device's refusal is matched to it. */
export const STEP_OF: Partial<Record<UpdateJobStep, FwStep>> = {
  transferring: 'begin',
  verifying: 'verify',
  applying: 'apply',
  confirming: 'confirm',
  rollingBack: 'rollback',
};

/** What identifies the transfer in every fw.* message. */
export interface TransferHeader {
  readonly transferId: string;
  readonly version: string;
  readonly size: number;
  readonly sha256: string;
  readonly chunkBytes: number;
}

/**
 * The message a step says (again): `fw.begin` while transferring (the chunks themselves come
 * from the window once it began); undefined while rebooting or on trial, when the device speaks next.
 */
export function stepMessage(step: UpdateJobStep, t: TransferHeader): Message | undefined {
  const { transferId } = t;
  switch (step) {
    case 'transferring':
      return {
        v: 1,
        type: 'fw.begin',
        transferId,
        version: t.version,
        size: t.size,
        sha256: t.sha256,
        chunkBytes: t.chunkBytes,
      };
    case 'verifying':
      return { v: 1, type: 'fw.verify', transferId };
    case 'applying':
      return { v: 1, type: 'fw.apply', transferId };
    case 'confirming':
      return { v: 1, type: 'fw.confirm', transferId };
    case 'rollingBack':
      return { v: 1, type: 'fw.rollback', transferId };
    default:
      return undefined;
  }
}

/** Why a job failed or went back, as it keeps it (the step is the job's). */
export interface StepReason {
  readonly code: string;
  readonly message: string;
}

/**
 * A device's refusal (an fw.ack with an error) of any step but a chunk:
 * - `rolledBack`: asked to confirm, the device says it went back to the old image by itself (a
 *   reset on trial): that is a rollback;
 * - `fail`: it refused the step the job is at (hashMismatch at verify: nothing is applied);
 * - `ignore`: a late answer to an earlier step.
 */
export function planRefusal(step: UpdateJobStep, ack: FwAckMessage): 'rolledBack' | 'fail' | 'ignore' {
  if (ack.step === 'confirm' && step === 'confirming' && ack.error?.code === 'rolledBack')
    return 'rolledBack';
  return STEP_OF[step] === ack.step ? 'fail' : 'ignore';
}

/** What a hello of the device does to the job. */
export type HelloPlan =
  /** Nothing (the same boot, or a step the hello does not concern). */
  | { readonly kind: 'ignore' }
  /** Back from a lost link or a reboot: say the step again (while transferring, fw.begin). */
  | { readonly kind: 'sayAgain' }
  /** The new image runs unconfirmed on a new boot: its trial starts. */
  | { readonly kind: 'startTrial' }
  /** The device runs the old image: the job ends rolled back (`why` kept when given). */
  | { readonly kind: 'rolledBack'; readonly why?: StepReason }
  /** Unhealthy on trial: the job asks the device to roll back. */
  | { readonly kind: 'rollBack'; readonly why: StepReason };

/**
 * A hello at `step` of a job flashing `version`; `newBoot` when its boot differs from the last
 * one the job saw (before the apply, the one a reboot is told from; on trial, the trial's).
 */
export function planHello(
  step: UpdateJobStep,
  version: string,
  newBoot: boolean,
  h: HelloMessage,
): HelloPlan {
  const onNewImage = h.firmware.version === version && !h.firmware.confirmed;
  switch (step) {
    case 'transferring':
    case 'verifying':
    case 'applying':
      // The apply ack was lost with the reboot.
      if (step === 'applying' && newBoot && onNewImage) return { kind: 'startTrial' };
      return { kind: 'sayAgain' };
    case 'confirming':
      // Rebooted after the trial, before the confirm landed (a power cut, often while the app was
      // away: a trial that ran out meanwhile is confirmed at once on restart), and the bootloader
      // went back to the old image: nothing to confirm.
      if (newBoot && h.firmware.version !== version)
        return {
          kind: 'rolledBack',
          why: {
            code: 'bootloaderRevert',
            message: `the device rebooted before its confirm and went back to ${h.firmware.version}`,
          },
        };
      return { kind: 'sayAgain' };
    case 'rebooting':
      if (!newBoot) return { kind: 'ignore' };
      if (onNewImage) return { kind: 'startTrial' };
      return {
        kind: 'rolledBack',
        why: {
          code: 'notBooted',
          message: `the device came back running ${h.firmware.version}, not ${version}`,
        },
      };
    case 'onTrial':
      if (!newBoot) return { kind: 'ignore' };
      if (h.firmware.version !== version)
        return {
          kind: 'rolledBack',
          why: {
            code: 'bootloaderRevert',
            message: `the device rebooted on trial and went back to ${h.firmware.version}`,
          },
        };
      // Rebooted on trial and still on the new image: not healthy, roll back.
      return {
        kind: 'rollBack',
        why: { code: 'rebootedOnTrial', message: 'the device rebooted while the new image was on trial' },
      };
    case 'rollingBack':
      if (newBoot && h.firmware.version !== version) return { kind: 'rolledBack' };
      return newBoot ? { kind: 'sayAgain' } : { kind: 'ignore' };
    default:
      return { kind: 'ignore' };
  }
}

/** Where a job saved before an app restart picks up. */
export type ResumePlan =
  /** Transfer again from fw.begin, which answers what the device holds. */
  | { readonly kind: 'transfer' }
  /** Say the saved step again. */
  | { readonly kind: 'say'; readonly step: UpdateJobStep }
  /** Wait for the new boot's hello what is left of the reboot time. */
  | { readonly kind: 'awaitReboot'; readonly leftMs: number }
  /** On trial for `soakLeftMs` (undefined: a whole trial); `boot` is the trial's when the device came back meanwhile. */
  | { readonly kind: 'trial'; readonly soakLeftMs: number | undefined; readonly boot?: number }
  /** A saved final step: nothing to do. */
  | { readonly kind: 'none' };

/**
 * The plan for a job saved at `r`, given the device's last hello (`current`) and the wall clock
 * now; `replayHello` when that hello came from another boot than the saved one, so the job hears
 * it after picking up (the device may have rebooted while the app was away).
 */
export function planResume(
  r: UpdateJobResume,
  current: HelloMessage | undefined,
  version: string,
  wallNow: number,
): { readonly plan: ResumePlan; readonly replayHello: boolean } {
  const leftMs = Math.max(0, (r.deadline ?? wallNow) - wallNow);
  const replayHello = current !== undefined && current.boot !== r.boot;
  switch (r.step) {
    case 'queued':
    case 'transferring':
      return { plan: { kind: 'transfer' }, replayHello: false };
    case 'verifying':
    case 'applying':
    case 'confirming':
    case 'rollingBack':
      return { plan: { kind: 'say', step: r.step }, replayHello };
    case 'rebooting':
      // The device may have come back while the app was down: its hello then came before this job.
      if (
        current &&
        r.boot !== undefined &&
        current.boot !== r.boot &&
        current.firmware.version === version &&
        !current.firmware.confirmed
      )
        return { plan: { kind: 'trial', soakLeftMs: undefined, boot: current.boot }, replayHello: false };
      return { plan: { kind: 'awaitReboot', leftMs }, replayHello };
    case 'onTrial':
      return { plan: { kind: 'trial', soakLeftMs: leftMs }, replayHello };
    default:
      return { plan: { kind: 'none' }, replayHello: false };
  }
}
