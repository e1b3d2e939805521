/**
 * Which devices the fleet holds: adding one (validated, saved, started), removing one (its open
 * commands cancelled, its supervisor stopped, its row deleted), and bringing a failed one back.
 */

import type { DynamicSupervisor } from '../../runtime/dynamic-supervisor.js';
import type { JsonObject } from '../../store/store.js';
import { formatIssues } from '../define-device.js';
import { parseDeviceId } from '../device-id.js';
import type { ChildSpecs } from './child-specs.js';
import type { Entry, FleetContext } from './context.js';
import { fail, newEntry, view } from './context.js';
import type { AddDeviceInput, DevicePatch, DeviceUpdate, DeviceView, FleetResult } from './types.js';

export interface Membership {
  /** Starts the device's supervisor under `devices`; a failed start marks the device failed. */
  launch(e: Entry): Promise<FleetResult<DeviceView>>;
  addDevice(input: AddDeviceInput): Promise<FleetResult<DeviceView>>;
  updateDevice(id: string, patch: DevicePatch): Promise<FleetResult<DeviceUpdate>>;
  removeDevice(id: string): Promise<FleetResult<undefined>>;
  restartDevice(id: string): Promise<FleetResult<DeviceView>>;
}

export function createMembership(
  ctx: FleetContext,
  devices: DynamicSupervisor,
  specs: ChildSpecs,
): Membership {
  const { runtime, store, kinds, entries } = ctx;

  async function launch(e: Entry): Promise<FleetResult<DeviceView>> {
    const res = await devices.startChild(specs.deviceSpec, e);
    if (!res.ok) {
      e.failure = { code: 'startFailed', message: res.error.message, at: runtime.clock.wallNow() };
      return fail('deviceFailed', res.error.message);
    }
    return { ok: true, value: view(e) };
  }

  return {
    launch,

    async addDevice(input) {
      if (ctx.stopping) return fail('stopped', 'the fleet is stopping');
      const id = parseDeviceId(input.id);
      if (!id.ok) return fail('badDeviceId', id.error.message);
      if (entries.has(id.value)) return fail('alreadyExists', `device '${id.value}' already exists`);
      if (ctx.owns && !ctx.owns(id.value))
        return fail(
          'notOwner',
          `device '${id.value}' belongs to a shard another instance of the cluster leases: add it there ` +
            '(each instance adds and supervises the devices of its own shards; docs/scale-out.md)',
        );
      const kind = kinds.get(input.kind);
      if (!kind)
        return fail(
          'unknownKind',
          `unknown kind '${String(input.kind).slice(0, 80)}' (known: ${[...kinds.keys()].join(', ')})`,
        );
      const attrs = kind.parseAttributes(input.attributes ?? {});
      if (!attrs.ok) return fail('badAttributes', attrs.message);
      let spec: JsonObject = {};
      if (input.spec !== undefined) {
        const s = kind.spec ? kind.spec.safeParse(input.spec) : { success: true as const, data: input.spec };
        if (!s.success) return fail('badSpec', formatIssues(s.error));
        spec = s.data as JsonObject;
      }
      const saved = await store.upsertDevice({
        id: id.value,
        kind: kind.kind,
        name: input.name ?? id.value,
        tags: input.tags ?? [],
        attributes: attrs.value as JsonObject,
        spec,
      });
      if (!saved.ok) return fail('badAttributes', saved.error.message);
      const e = newEntry(runtime, saved.value, kind);
      e.config = specs.machineConfig(kind, attrs.value);
      entries.set(id.value, e);
      ctx.logEvent('device.added', id.value, { kind: kind.kind });
      return launch(e);
    },

    async updateDevice(id, patch) {
      if (ctx.stopping) return fail('stopped', 'the fleet is stopping');
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      let attributes: JsonObject | undefined;
      if (patch.attributes !== undefined) {
        const attrs = e.kind.parseAttributes(patch.attributes);
        if (!attrs.ok) return fail('badAttributes', attrs.message);
        const parsed = attrs.value as JsonObject;
        if (JSON.stringify(parsed) !== JSON.stringify(e.record.attributes)) attributes = parsed;
      }
      const changed: string[] = [];
      if (patch.name !== undefined && patch.name !== e.record.name) changed.push('name');
      if (patch.tags !== undefined && JSON.stringify(patch.tags) !== JSON.stringify(e.record.tags))
        changed.push('tags');
      if (attributes) changed.push('attributes');
      if (changed.length === 0) return { ok: true, value: { device: view(e), changed, restarted: false } };
      const saved = await store.upsertDevice({
        id: e.record.id,
        kind: e.record.kind,
        name: patch.name ?? e.record.name,
        tags: patch.tags ?? e.record.tags,
        ...(attributes ? { attributes } : {}),
      });
      if (!saved.ok) return fail('badAttributes', saved.error.message);
      e.record = saved.value;
      ctx.logEvent('device.updated', id, { changed });
      if (!attributes) return { ok: true, value: { device: view(e), changed, restarted: false } };
      // New attributes make a new machine config: its processes start again with them, resuming
      // the state they had (as after a crash, but not counted as one).
      if (e.supervisor) await devices.terminateChild(e.supervisor.pid);
      e.restore = e.machine?.persistedState() ?? e.restore;
      e.machine = undefined;
      e.failure = undefined;
      e.config = specs.machineConfig(e.kind, attributes);
      const launched = await launch(e);
      if (!launched.ok) return launched;
      return { ok: true, value: { device: launched.value, changed, restarted: true } };
    },

    async removeDevice(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      e.removed = true;
      ctx.commands.cancelDevice(id, `device ${id} was removed from the fleet`);
      if (e.supervisor) await devices.terminateChild(e.supervisor.pid);
      entries.delete(id);
      await store.deleteDevice(id);
      ctx.logEvent('device.removed', id, null);
      return { ok: true, value: undefined };
    },

    async restartDevice(id) {
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      if (!e.failure)
        return fail('notFailed', `device ${id} is ${e.supervisor ? 'running' : 'stopped'}, not failed`);
      if (!kinds.has(e.record.kind)) return fail('unknownKind', e.failure.message);
      if (!e.config) {
        const attrs = e.kind.parseAttributes(e.record.attributes);
        if (!attrs.ok) return fail('badAttributes', attrs.message);
        e.config = specs.machineConfig(e.kind, attrs.value);
      }
      if (e.failure.code === 'badSnapshot') {
        runtime.logger.warn(
          `device ${id}: its stored state could not be restored and is discarded; starting fresh`,
        );
        e.restore = undefined;
        e.machine = undefined;
      }
      e.failure = undefined;
      ctx.logEvent('device.restarted', id, { by: 'operator' });
      return launch(e);
    },
  };
}
