/**
 * Restore at app start: every device row comes back in its stored state (a deadline that passed
 * meanwhile fires at once); bad data (an unreadable row, an unknown kind, invalid attributes, an
 * unparsable snapshot) marks that one device failed with the reason, and the rest start. A stored
 * state the kind's machine no longer has (saved by an older app) starts the machine afresh, with
 * a `device.snapshotMigrated` event (snapshot-migration.ts).
 */

import { formatExitReason } from '../../runtime/exit-reason.js';
import type { Store } from '../../store/store.js';
import type { DeviceKind } from '../define-device.js';
import type { ChildSpecs } from './child-specs.js';
import type { Entry, FleetContext, StoredState } from './context.js';
import { markFailed, newEntry } from './context.js';
import type { Membership } from './membership.js';
import type { DroppedState } from './snapshot-migration.js';
import { dropUnfitState } from './snapshot-migration.js';

type SnapshotRow = Awaited<ReturnType<Store['loadSnapshots']>>[number];

export interface RestoreOutcome {
  started: number;
  failed: { id: string; code: string; message: string }[];
}

/** Below this many devices to restore, their snapshots are read one by one instead of all. */
const FEW_SNAPSHOTS = 64;

/**
 * Loads the stored snapshots of known kinds, each checked for version and shape: of every device,
 * or only of `ids` when they are few (a cluster instance taking over a few shards, or its
 * periodic sync finding one new device, reads those rows, not the whole table).
 */
async function loadSnapshots(ctx: FleetContext, ids?: readonly string[]): Promise<Map<string, SnapshotRow>> {
  const { kinds } = ctx;
  const options = {
    knownKinds: kinds.keys(),
    validate: (r: { kind: string; version: number; snapshot: unknown }) => {
      const v = kinds.get(r.kind)?.snapshotVersion;
      if (v !== undefined && r.version !== v)
        return `snapshot version ${r.version}, the app reads version ${v}`;
      const s = r.snapshot as unknown as StoredState | null;
      if (!s || typeof s !== 'object' || !Array.isArray(s.timers) || typeof s.machine !== 'object')
        return 'not a device snapshot (machine, timers)';
      return undefined;
    },
  };
  const snaps = new Map<string, SnapshotRow>();
  if (ids && ids.length <= FEW_SNAPSHOTS) {
    for (const id of ids) {
      const s = await ctx.store.loadSnapshot(id, { ...options, knownKinds: kinds.keys() });
      if (s) snaps.set(s.deviceId, s);
    }
    return snaps;
  }
  for (const s of await ctx.store.loadSnapshots(options)) snaps.set(s.deviceId, s);
  return snaps;
}

/** Loads every device from the store and starts it; see {@link Fleet.start}. */
export async function restoreDevices(
  ctx: FleetContext,
  specs: ChildSpecs,
  membership: Membership,
  which?: (deviceId: string) => boolean,
): Promise<RestoreOutcome> {
  const { runtime, kinds, entries } = ctx;
  const log = runtime.logger;
  const failed: RestoreOutcome['failed'] = [];
  const idOf = (row: (typeof all)[number]) => (row.ok ? row.value.id : row.id);
  const all = await ctx.store.listDevices();
  // A cluster instance restores only the devices of its shards, each once.
  const rows = which ? all.filter((row) => which(idOf(row)) && !entries.has(idOf(row))) : all;
  if (rows.length === 0) return { started: 0, failed };
  const snaps = await loadSnapshots(ctx, which ? rows.map(idOf) : undefined);
  let started = 0;
  for (const row of rows) {
    if (!row.ok) {
      failed.push({ id: row.id, code: 'badRecord', message: row.error.message });
      log.error(`device row ${row.id} cannot be read: ${row.error.message}`);
      continue;
    }
    const record = row.value;
    const kind = kinds.get(record.kind);
    if (!kind) {
      const placeholder = newEntry(runtime, record, { kind: record.kind } as DeviceKind);
      entries.set(record.id, placeholder);
      const message = `unknown kind '${record.kind}' (known: ${[...kinds.keys()].join(', ')})`;
      markFailed(ctx, placeholder, 'unknownKind', message);
      failed.push({ id: record.id, code: 'unknownKind', message });
      continue;
    }
    const e: Entry = newEntry(runtime, record, kind);
    entries.set(record.id, e);
    const attrs = kind.parseAttributes(record.attributes);
    if (!attrs.ok) {
      markFailed(ctx, e, 'badAttributes', attrs.message);
      failed.push({ id: record.id, code: 'badAttributes', message: attrs.message });
      continue;
    }
    e.config = specs.machineConfig(kind, attrs.value);
    const snap = snaps.get(record.id);
    if (snap && !snap.ok) {
      markFailed(ctx, e, snap.error.code, snap.error.message);
      failed.push({ id: record.id, code: snap.error.code, message: snap.error.message });
      continue;
    }
    let dropped: DroppedState | undefined;
    if (snap?.ok) {
      const s = snap.value.snapshot as unknown as StoredState;
      dropped = dropUnfitState(kind.kind, kind.machine, s);
      if (!dropped) {
        e.restore = { snapshot: s.machine, timers: s.timers };
        e.stateEnteredAt = s.stateEnteredAt ?? e.stateEnteredAt;
      }
    }
    if (await startRestored(ctx, e, membership, failed)) started++;
    if (dropped) logMigrated(ctx, e, dropped);
  }
  return { started, failed };
}

/** Says which stored state a device lost, why, and where its fresh machine started. */
function logMigrated(ctx: FleetContext, e: Entry, dropped: DroppedState): void {
  const to = e.machine?.alive ? e.machine.state : null;
  ctx.runtime.logger.warn(
    `device ${e.record.id}: stored state '${dropped.from}' dropped, ${dropped.reason}; started in '${to}'`,
  );
  ctx.logEvent('device.snapshotMigrated', e.record.id, { ...dropped, to });
}

/** Starts one restored device; one that does not come up is failed with `badSnapshot`. */
async function startRestored(
  ctx: FleetContext,
  e: Entry,
  membership: Membership,
  failed: RestoreOutcome['failed'],
): Promise<boolean> {
  const res = await membership.launch(e);
  if (res.ok && e.machine?.alive) return true;
  const message = e.lastExit ? formatExitReason(e.lastExit) : res.ok ? 'did not start' : res.error.message;
  if (!e.failure) markFailed(ctx, e, 'badSnapshot', `stored state does not restore: ${message}`);
  failed.push({ id: e.record.id, code: e.failure?.code ?? 'badSnapshot', message });
  return false;
}
