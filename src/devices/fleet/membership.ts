/**
 * Which devices the fleet holds: adding one (checked by device-input.ts, saved, started), changing
 * one, removing one (its open commands cancelled, its supervisor stopped, its row deleted), and
 * bringing a failed one back.
 */

import type { DynamicSupervisor } from '../../runtime/dynamic-supervisor.js';
import type { JsonObject } from '../../store/store.js';
import type { ChildSpecs } from './child-specs.js';
import type { Entry, FleetContext } from './context.js';
import { fail, newEntry, view } from './context.js';
import type { KnownDevices } from './device-input.js';
import { checkNewDevice, diffPatch } from './device-input.js';
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
  const known: KnownDevices = { kinds, owns: ctx.owns, has: (id) => entries.has(id) };

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
      const checked = checkNewDevice(input, known);
      if (!checked.ok) return checked;
      const { id, kind, attributes, spec } = checked.value;
      const saved = await store.upsertDevice({
        id,
        kind: kind.kind,
        name: input.name ?? id,
        tags: input.tags ?? [],
        attributes: attributes as JsonObject,
        spec,
      });
      if (!saved.ok) return fail('badAttributes', saved.error.message);
      const e = newEntry(runtime, saved.value, kind);
      e.config = specs.machineConfig(kind, attributes);
      entries.set(id, e);
      ctx.logEvent('device.added', id, { kind: kind.kind });
      return launch(e);
    },

    async updateDevice(id, patch) {
      if (ctx.stopping) return fail('stopped', 'the fleet is stopping');
      const e = entries.get(id);
      if (!e) return fail('notFound', `no device '${String(id).slice(0, 80)}'`);
      const diff = diffPatch(e.record, e.kind, patch);
      if (!diff.ok) return diff;
      const { changed, attributes } = diff.value;
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

    restartDevice: (id) => restartFailed(ctx, specs, launch, id),
  };
}

/**
 * Brings a failed device back (`notFailed` for one that is not): a stored state that could not
 * be restored is discarded, any other resumes.
 */
async function restartFailed(
  ctx: FleetContext,
  specs: ChildSpecs,
  launch: (e: Entry) => Promise<FleetResult<DeviceView>>,
  id: string,
): Promise<FleetResult<DeviceView>> {
  const { runtime, kinds, entries } = ctx;
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
}
