/**
 * The store a cluster instance's fleet writes through: the same {@link Store}, which says after
 * each committed write of what another instance's fleet table shows of a device — its saved state
 * (snapshot), its device row (name, kind, tags, reported firmware; added or deleted), its link and
 * health events (src/cluster/fleet-reads.ts PRESENCE_KINDS) — which devices it changed
 * (src/cluster/fleet-changes.ts sends it to the other instances). A write that fails or is
 * refused says nothing: nothing changed. Telemetry, commands and other events are not signalled:
 * no remote row shows them.
 *
 * @example
 * const store = signallingStore(postgresStore, (ids) => changes.changed(ids));
 * await store.saveSnapshot(input);   // committed, then changed([input.deviceId])
 */
import type { Store } from '../store/store.js';
import { PRESENCE_KINDS } from './fleet-reads.js';

const PRESENCE = new Set<string>([...PRESENCE_KINDS.link, ...PRESENCE_KINDS.health]);

/** `store` with its writes of devices' rows signalled to `changed` once committed. */
export function signallingStore(store: Store, changed: (ids: readonly string[]) => void): Store {
  return {
    ...store,
    async upsertDevice(device) {
      const r = await store.upsertDevice(device);
      if (r.ok) changed([r.value.id]);
      return r;
    },
    async setDeviceStatus(deviceId, status) {
      const r = await store.setDeviceStatus(deviceId, status);
      if (r.ok) changed([deviceId]);
      return r;
    },
    async deleteDevice(deviceId) {
      const r = await store.deleteDevice(deviceId);
      if (r.ok) changed([deviceId]);
      return r;
    },
    async saveSnapshot(snapshot) {
      await store.saveSnapshot(snapshot);
      changed([snapshot.deviceId]);
    },
    async appendEvents(events, options) {
      const seqs = await store.appendEvents(events, options);
      const ids = new Set<string>();
      for (const e of events) if (e.deviceId !== undefined && PRESENCE.has(e.kind)) ids.add(e.deviceId);
      if (ids.size > 0) changed([...ids]);
      return seqs;
    },
  };
}
