/**
 * A rollout's jobs on the devices other instances of a cluster run (docs/scale-out.md, "Rollouts
 * across the cluster"). The rollout stays on the instance it was created on; each device's job is
 * the owner's, asked through the cluster's router as a single update is (`firmwareUpdate`, the
 * image shared through the database first), and followed by asking the owner for it
 * (`firmwareJobs`) every `pollMs` until it ends.
 *
 * - The owner refuses as its API does: `alreadyRunning` (the rollout counts the device done),
 *   `circuitOpen`, `notSupported`, `wrongKind`, `busy` (a job of another image runs there), its
 *   image checks. A `busy` owner whose running job is this image's (the rollout's own job, asked
 *   before this instance restarted) is followed, not refused.
 * - Nothing tried: no instance leases the device's shard now (`noOwner`), the router is not up yet
 *   or stopping (`unavailable`), the database failed (`routingFailed`), the device moved while
 *   asked (`notOwner`): refused `notTried`, the rollout waits `retryMs` and spends no attempt.
 * - Not answered in time (`ownerDidNotAnswer`): it may have started, so it is followed.
 * - A job its owner no longer has (the owner restarted, or the device moved to another instance,
 *   whose job table is its own) ends `failed` with `jobLost` after `lostAfterPolls` answers
 *   without it, unless the device now runs the image confirmed (then `succeeded`): the rollout
 *   tries it again, and the new owner's job resumes from the offset the device acknowledged.
 * - An owner that cannot be asked for `giveUpMs` ends the job `failed` with the router's code.
 *
 * Cost: one routed read (a row written and read in PostgreSQL, two notifications) per running
 * remote job per `pollMs` (2 s): 20 jobs at a time are 10 a second.
 *
 * @example
 * const remote = remoteRolloutJobs({ router: () => cluster.router, share, clock, logger });
 * const r = await remote.start('pump-7', { sha256, version: '1.2.0', actor: 'rollout:ro-1' });
 * if (r.ok) (await r.value.done).step; // 'succeeded'
 */
import type { RoutedAnswer, RoutedKind, RoutedOp } from '../cluster/command-router.js';
import type { UpdateJobSettings } from '../firmware/firmware-updates.js';
import type { RolloutJob, RolloutJobRefusal } from '../firmware/rollout-types.js';
import type { UpdateJobSnapshot, UpdateJobStep } from '../firmware/update-job.js';
import { FINAL_UPDATE_STEPS } from '../firmware/update-job.js';
import type { JsonObject, JsonValue } from '../lib/json.js';
import type { Result } from '../lib/result.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/runtime.js';

type RemoteKind = Extract<RoutedKind, 'firmwareUpdate' | 'firmwareCancel' | 'firmwareJobs' | 'device'>;

/** The router's `call`, as far as this file uses it. */
export interface RemoteCaller {
  call<K extends RemoteKind>(op: RoutedOp<K>): Promise<RoutedAnswer<K>>;
}

export interface RemoteRolloutJobsOptions {
  /** The cluster's router once it is up (undefined before: asked again at the next try). */
  readonly router: () => RemoteCaller | undefined;
  /** Puts the image where the owner can import it (src/cluster/shared-images.ts); throws what failed. */
  readonly share: (sha256: string) => Promise<void>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often a running job is asked for; default 2000 ms. */
  readonly pollMs?: number;
  /** A job its owner answers it does not have this many times running is lost; default 3. */
  readonly lostAfterPolls?: number;
  /** An owner that cannot be asked this long ends the job failed; default 120,000 ms. */
  readonly giveUpMs?: number;
  /** A start with nothing tried is tried again this much later; default 2000 ms. */
  readonly retryMs?: number;
}

export interface RemoteStart {
  readonly sha256: string;
  readonly version: string;
  readonly actor: string;
  readonly settings?: UpdateJobSettings;
}

export interface RemoteRolloutJobs {
  /** Asks the device's owner for the job; answers once the owner did (or could not). */
  start(deviceId: string, what: RemoteStart): Promise<Result<RolloutJob, RolloutJobRefusal>>;
  /** Follows the device's job of this image on its owner (a rollout restored on this instance). */
  follow(deviceId: string, sha256: string, version: string): RolloutJob;
  /** Asks the owner to cancel the device's job (what it answers shows in the followed job). */
  cancel(deviceId: string): void;
}

/** The router's own refusals that say nothing was carried out: asked again later. */
const NOT_TRIED = new Set(['noOwner', 'unavailable', 'routingFailed', 'stopped', 'notOwner']);

/** A job as the owner's `firmwareJobs` answers it (src/host/contract: FirmwareJobView), as far as read here. */
interface JobSeen {
  readonly sha256: string;
  readonly step: UpdateJobStep;
  readonly error: { readonly code: string; readonly message: string; readonly step?: UpdateJobStep } | null;
}

function jobsOf(value: JsonValue): JobSeen[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (j): j is JsonValue & JobSeen =>
      typeof j === 'object' &&
      j !== null &&
      !Array.isArray(j) &&
      typeof j.sha256 === 'string' &&
      typeof j.step === 'string',
  );
}

/** The version a device's detail says it runs confirmed (a rollout's count: src/host/rollout-runner.ts). */
function confirmedVersion(detail: JsonValue): string | undefined {
  const status = objectOf(objectOf(detail)?.status);
  return typeof status?.firmware === 'string' && status.confirmed !== false ? status.firmware : undefined;
}

const objectOf = (v: JsonValue | undefined): JsonObject | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject) : undefined;

type Final = Pick<UpdateJobSnapshot, 'step' | 'error'>;

export function remoteRolloutJobs(options: RemoteRolloutJobsOptions): RemoteRolloutJobs {
  const { clock, logger } = options;
  const pollMs = options.pollMs ?? 2000;
  const lostAfter = options.lostAfterPolls ?? 3;
  const giveUpMs = options.giveUpMs ?? 120_000;
  const retryMs = options.retryMs ?? 2000;
  const sleep = (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms));
  /** Each image is shared once (its bytes written once); a failed share is tried again. */
  const shares = new Map<string, Promise<void>>();
  const share = (sha256: string): Promise<void> => {
    let p = shares.get(sha256);
    if (!p) {
      p = options.share(sha256);
      shares.set(sha256, p);
      p.catch(() => shares.delete(sha256));
    }
    return p;
  };

  async function call<K extends RemoteKind>(op: RoutedOp<K>): Promise<RoutedAnswer<K>> {
    const router = options.router();
    if (!router)
      return {
        ok: false,
        error: { code: 'unavailable', message: 'the cluster router is not up yet' },
      } as RoutedAnswer<K>;
    try {
      return await router.call(op);
    } catch (error) {
      return { ok: false, error: { code: 'routingFailed', message: String(error) } } as RoutedAnswer<K>;
    }
  }

  function follow(deviceId: string, sha256: string, version: string, first?: UpdateJobStep): RolloutJob {
    let step: UpdateJobStep = first ?? 'queued';
    const listeners: ((s: UpdateJobStep) => void)[] = [];
    const moved = (next: UpdateJobStep) => {
      if (next === step) return;
      step = next;
      if (!FINAL_UPDATE_STEPS.includes(next)) for (const l of listeners) l(next);
    };
    const done = (async (): Promise<Final> => {
      let misses = 0;
      let unreachableSince: number | undefined;
      for (;;) {
        await sleep(pollMs);
        const r = await call({ kind: 'firmwareJobs', deviceId });
        if (!r.ok) {
          unreachableSince ??= clock.now();
          if (clock.now() - unreachableSince < giveUpMs) continue;
          return {
            step: 'failed',
            error: {
              code: r.error.code,
              message: `the update of '${deviceId}' could not be followed on its instance for ${Math.round(giveUpMs / 1000)} s: ${r.error.message}`,
              step,
            },
          };
        }
        unreachableSince = undefined;
        const job = jobsOf(r.value).find((j) => j.sha256 === sha256);
        if (job) {
          misses = 0;
          moved(job.step);
          if (FINAL_UPDATE_STEPS.includes(job.step))
            return {
              step: job.step,
              error: job.error
                ? { code: job.error.code, message: job.error.message, step: job.error.step ?? step }
                : undefined,
            };
          continue;
        }
        if (++misses < lostAfter) continue;
        // Gone from its owner: done already (the device runs the image confirmed), or lost.
        const detail = await call({ kind: 'device', deviceId });
        if (detail.ok && confirmedVersion(detail.value) === version)
          return { step: 'succeeded', error: undefined };
        return {
          step: 'failed',
          error: {
            code: 'jobLost',
            message: `the update of '${deviceId}' is gone from the instance that runs the device (it restarted, or the device moved to another instance)`,
            step,
          },
        };
      }
    })();
    return {
      snapshot: () => ({ step }),
      done,
      onStep: (listener) => {
        listeners.push(listener);
      },
    };
  }

  return {
    follow,

    async start(deviceId, what) {
      const { sha256, version, actor, settings } = what;
      try {
        await share(sha256);
      } catch (error) {
        return {
          ok: false,
          error: {
            code: 'routingFailed',
            message: `cannot share the image with the device's instance: ${String(error)}`,
            notTried: true,
            retryAt: clock.wallNow() + retryMs,
          },
        };
      }
      const r = await call({
        kind: 'firmwareUpdate',
        deviceId,
        sha256,
        actor,
        ...(settings?.soakMs !== undefined ? { trialMs: settings.soakMs } : {}),
        ...(settings?.trialChecks ? { trialChecks: settings.trialChecks.map((c) => c.text) } : {}),
      });
      if (r.ok) {
        const [job] = jobsOf([r.value]);
        return { ok: true, value: follow(deviceId, sha256, version, job?.step) };
      }
      const { code, message } = r.error;
      if (code === 'ownerDidNotAnswer') {
        logger.warn('rollout: the owner did not answer the start of an update: following it', {
          deviceId,
          message,
        });
        return { ok: true, value: follow(deviceId, sha256, version) };
      }
      if (code === 'busy') {
        // The rollout's own job, asked before this instance restarted, is followed.
        const jobs = await call({ kind: 'firmwareJobs', deviceId });
        const running = jobs.ok ? jobsOf(jobs.value).find((j) => j.sha256 === sha256) : undefined;
        if (running && !FINAL_UPDATE_STEPS.includes(running.step))
          return { ok: true, value: follow(deviceId, sha256, version, running.step) };
      }
      if (NOT_TRIED.has(code))
        return { ok: false, error: { code, message, notTried: true, retryAt: clock.wallNow() + retryMs } };
      return { ok: false, error: r.error };
    },

    cancel(deviceId) {
      void call({ kind: 'firmwareCancel', deviceId }).then((r) => {
        if (!r.ok && r.error.code !== 'noJob' && r.error.code !== 'tooLate' && r.error.code !== 'finished')
          logger.warn('rollout: the cancel of a device’s update on its instance failed', {
            deviceId,
            code: r.error.code,
            message: r.error.message,
          });
      });
    },
  };
}
