/**
 * Adding and editing a device as the API does it (`deviceAdd`, `deviceEdit`, `devicesImport`):
 * through the fleet, which validates the attributes by the kind, then audited in the event log as
 * `device.audit` with the actor the transport names. The fleet's refusals come out as the
 * contract's codes.
 *
 * @example
 * const changes = createDeviceChanges(ctx);
 * const device = await changes.add({ id: 'meter-1', kind: 'modbus.device', tags: [], attributes }, 'ui', 'api');
 */
import type { DeviceView } from '../../devices/fleet.js';
import type { JsonObject } from '../../store/store.js';
import type { App } from '../app.js';
import type { Results } from '../contract.js';
import type { ApiContext } from './handlers.js';
import { ApiFailure } from './handlers.js';

/** The actor when the transport names none. */
export const DEFAULT_ACTOR = 'api';

/** The event kind of every audited change to the fleet's membership. */
export const DEVICE_AUDIT_EVENT = 'device.audit';

/** The fleet's refusals in the contract's words. */
const CODES: Record<string, string> = {
  notFound: 'notFound',
  badDeviceId: 'badRequest',
  badAttributes: 'badRequest',
  unknownKind: 'badRequest',
  alreadyExists: 'conflict',
  stopped: 'unavailable',
};

/** Throws the API failure for a fleet's refusal `code` (translated to the contract's code). */
export const fail = (code: string, message: string): never => {
  throw new ApiFailure(CODES[code] ?? code, message);
};

/** Writes one audit event (durable: an operator's change). */
export async function auditDevice(
  app: App,
  deviceId: string,
  action: string,
  actor: string,
  data: JsonObject = {},
): Promise<void> {
  await app.store.appendEvents(
    [{ at: Date.now(), deviceId, kind: DEVICE_AUDIT_EVENT, data: { action, actor, ...data } }],
    { durability: 'full' },
  );
}

export interface DeviceChanges {
  /** Adds a device and audits it; `via` other than `'api'` (e.g. `'import'`) is recorded. */
  add(
    input: { id: string; kind: string; name?: string; tags: readonly string[]; attributes: unknown },
    actor: string,
    via: string,
  ): Promise<DeviceView>;
  /** Changes a device; audited only when something changed. */
  edit(
    id: string,
    patch: { name?: string; tags?: readonly string[]; attributes?: unknown },
    actor: string,
    via: string,
  ): Promise<Results['deviceEdit']>;
}

export function createDeviceChanges(ctx: ApiContext): DeviceChanges {
  const { app } = ctx;
  const { fleet } = app;
  return {
    async add(input, actor, via) {
      const r = await fleet.addDevice(input);
      if (!r.ok) {
        // A device whose start failed is in the fleet (failed, shown so); anything else added nothing.
        if (r.error.code !== 'deviceFailed' || !fleet.has(input.id)) fail(r.error.code, r.error.message);
      }
      await auditDevice(app, input.id, 'add', actor, {
        kind: input.kind,
        name: input.name ?? input.id,
        tags: [...input.tags],
        ...(via !== 'api' ? { via } : {}),
      });
      return fleet.device(input.id)!;
    },

    async edit(id, patch, actor, via) {
      const r = await fleet.updateDevice(id, patch);
      if (!r.ok) fail(r.error.code, r.error.message);
      const u = (r as { value: { device: DeviceView; changed: readonly string[]; restarted: boolean } })
        .value;
      if (u.changed.length > 0)
        await auditDevice(app, id, 'edit', actor, {
          changed: [...u.changed],
          restarted: u.restarted,
          ...(via !== 'api' ? { via } : {}),
        });
      return { device: ctx.row(fleet.device(id) ?? u.device), changed: u.changed, restarted: u.restarted };
    },
  };
}
