/**
 * The fleet's own start and stop, and a cluster instance's share of it: {@link Fleet.takeOver}
 * starts the devices of shards it gained, {@link Fleet.handOver} lets go of those it gives away
 * (saved first for a hand-over; nothing written when the lease is lost).
 */

import type { DynamicSupervisor } from '../../runtime/dynamic-supervisor.js';
import type { CommandGuards } from '../command-guards.js';
import type { ChildSpecs } from './child-specs.js';
import type { FleetContext } from './context.js';
import type { EventFeed } from './event-feed.js';
import type { Membership } from './membership.js';
import type { SnapshotWriter } from './persistence.js';
import type { ReconcileLoop } from './reconcile.js';
import { restoreDevices } from './restore.js';
import type { Fleet } from './types.js';

export interface StartStopParts {
  readonly ctx: FleetContext;
  /** The `devices` dynamic supervisor. */
  readonly devices: DynamicSupervisor;
  readonly specs: ChildSpecs;
  readonly membership: Membership;
  readonly reconcile: ReconcileLoop;
  readonly snapshots: SnapshotWriter;
  readonly feed: EventFeed;
  readonly guards: CommandGuards;
}

export type StartStop = Pick<Fleet, 'start' | 'takeOver' | 'handOver' | 'flush' | 'stop'>;

export function createStartStop(parts: StartStopParts): StartStop {
  const { ctx, devices, specs, membership, reconcile, snapshots, feed, guards } = parts;
  const { entries, commands } = ctx;
  const writesPending = () => feed.pending() !== undefined || snapshots.pending() !== undefined;
  const settle = async () => {
    while (writesPending()) await Promise.all([snapshots.pending(), feed.pending()]);
  };

  return {
    async start() {
      const outcome = await restoreDevices(ctx, specs, membership, ctx.owns);
      reconcile.schedule();
      await commands.load(ctx.owns);
      return outcome;
    },

    async takeOver(which) {
      if (ctx.stopping) return { started: 0, failed: [] };
      const outcome = await restoreDevices(ctx, specs, membership, which);
      await commands.load(which);
      return outcome;
    },

    async handOver(which, { save }) {
      const leaving = [...entries.values()].filter((e) => which(e.record.id));
      if (leaving.length === 0) return 0;
      if (save) {
        await snapshots.saveAll(leaving);
        await settle();
      }
      for (const e of leaving) {
        // No more writes of it from here: it is the other instance's now.
        e.removed = true;
        commands.release(e.record.id);
      }
      await Promise.all(
        leaving.map(async (e) => {
          if (e.supervisor) await devices.terminateChild(e.supervisor.pid);
          entries.delete(e.record.id);
          guards.forget(e.record.id);
        }),
      );
      return leaving.length;
    },

    flush: settle,

    async stop() {
      ctx.stopping = true;
      feed.stop();
      await commands.stop();
      reconcile.cancel();
      // Save every device's latest state before its machine goes away.
      await snapshots.saveAll(entries.values());
      await devices.stop();
      await settle();
    },
  };
}
