/**
 * A rollout outlives its instance in a cluster (docs/scale-out.md, "Rollouts across the
 * cluster"). Every `everyMs` (3 s) each instance looks for running or paused rollouts whose
 * instance is gone: it left (a graceful stop) or was not seen for `goneAfterMs` (a lease). For
 * each, it makes sure it has the image (its own, else the one shared in the database, imported
 * through its own checks), claims the rollout (one instance wins: src/cluster/shared-rollouts.ts)
 * and continues it as after a restart: the jobs under way, which run on the devices' owners, are
 * followed where they are; the devices not started yet are started from here. The instance that
 * was taken over does not continue it at its restart, and while it is paused or cut off, its
 * writes change nothing and it lets the rollout go.
 *
 * @example
 * const t = startRolloutTakeover({ db, instanceId: 'beta', goneAfterMs: 6000, runner, firmware, logger });
 * t.stop();
 */
import type pg from 'pg';
import { readSharedImage } from '../cluster/shared-images.js';
import { claimRollout, orphanedRollouts } from '../cluster/shared-rollouts.js';
import type { OpenedFirmware } from '../firmware/open-firmware.js';
import type { Logger } from '../runtime/runtime.js';
import type { RolloutRunner } from './rollout-runner.js';

export interface RolloutTakeoverOptions {
  readonly db: pg.Pool;
  readonly instanceId: string;
  /** An instance not seen for this long is gone (its lease time). */
  readonly goneAfterMs: number;
  readonly runner: Pick<RolloutRunner, 'adopt'>;
  readonly firmware: Pick<OpenedFirmware, 'images'>;
  readonly logger: Logger;
  /** How often to look; default 3000 ms. */
  readonly everyMs?: number;
}

export interface RolloutTakeover {
  /** One look now (after the one under way); the ids taken over. */
  pass(): Promise<string[]>;
  stop(): void;
}

export function startRolloutTakeover(options: RolloutTakeoverOptions): RolloutTakeover {
  const { db, instanceId, firmware, logger } = options;
  const everyMs = options.everyMs ?? 3000;
  /** What was said about a rollout that cannot be taken here (its image), said once. */
  const told = new Set<string>();
  let running: Promise<string[]> = Promise.resolve([]);
  let stopped = false;

  /** The image's bytes here, importing the shared one through this instance's checks if need be. */
  async function imageHere(sha256: string, id: string): Promise<Uint8Array | undefined> {
    const here = await firmware.images.readImage(sha256);
    if (here.ok) return here.value;
    const shared = await readSharedImage(db, sha256).catch(() => undefined);
    const imported = shared
      ? await firmware.images.importImage({
          manifest: shared.manifest,
          image: shared.image,
          actor: `rollout:${id}`,
          ...(shared.allowDowngrade ? { allowDowngrade: true } : {}),
        })
      : undefined;
    if (imported?.ok || imported?.error.code === 'duplicateImage') {
      const again = await firmware.images.readImage(sha256);
      if (again.ok) return again.value;
    }
    if (!told.has(id)) {
      told.add(id);
      logger.warn(`rollout ${id}: its instance is gone, and this one cannot take it over: no usable image`, {
        sha256,
        reason: imported && !imported.ok ? imported.error.message : 'not shared in the database',
      });
    }
    return undefined;
  }

  async function pass(): Promise<string[]> {
    const taken: string[] = [];
    for (const orphan of await orphanedRollouts(db, instanceId, options.goneAfterMs)) {
      if (stopped) break;
      const image = await imageHere(orphan.sha256, orphan.id);
      if (!image) continue;
      const body = await claimRollout(db, orphan.id, orphan.instance, instanceId);
      if (!body) continue; // another instance took it first
      await options.runner.adopt(
        orphan.id,
        {
          sha256: body.snapshot.sha256,
          version: body.snapshot.version,
          image,
          devices: body.snapshot.order,
          policy: body.policy,
          actor: body.actor,
        },
        body.snapshot,
      );
      logger.info(`rollout ${orphan.id} taken over from instance ${orphan.instance} (gone)`, {
        state: body.snapshot.state,
        wave: body.snapshot.wave + 1,
      });
      taken.push(orphan.id);
    }
    return taken;
  }

  const once = (): Promise<string[]> => {
    running = running.catch(() => []).then(pass);
    return running;
  };

  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    once()
      .catch((error: unknown) =>
        logger.warn('cluster: looking for rollouts to take over failed (tried again)', {
          error: String(error),
        }),
      )
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, everyMs);
      });
  };
  timer = setTimeout(tick, everyMs);

  return {
    pass: once,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
