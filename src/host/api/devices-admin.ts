/**
 * Devices managed from the app: `deviceAdd`, `deviceEdit`, `deviceRemove`, `modbusTestRead`,
 * `devicesExport` and `devicesImport`. Attributes are validated by the device's kind (its zod
 * schema, the same the fleet uses on load); every change is audited in the event log as
 * `device.audit` (`{ action, actor, … }`, durable) with the actor the transport names.
 *
 * Removing a device keeps its telemetry, events and commands (history) unless `purge`; its
 * broker account, when it has one, is revoked either way, before the removal (its session ends,
 * and what it still sends is not taken: src/host/app/revoked-devices.ts).
 *
 * @example
 * await api.call('deviceAdd', { id: 'meter-1', kind: 'modbus.device', attributes, test: true });
 * // { ok: true, value: { device: { id: 'meter-1', … }, read: { values: { voltage: 230.1 } } } }
 */

import { MODBUS_KIND } from '../../conventions/modbus/modbus-kind.js';
import type { Results } from '../contract.js';
import type { DeviceChanges } from './device-changes.js';
import { auditDevice, createDeviceChanges, DEFAULT_ACTOR, fail } from './device-changes.js';
import { devicesTransferHandlers } from './devices-transfer.js';
import type { ApiContext, Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';
import { testRead } from './modbus-test-read.js';

export { auditDevice, DEVICE_AUDIT_EVENT } from './device-changes.js';
export { DEVICE_CSV_COLUMNS, recordOf } from './devices-transfer.js';

export function devicesAdminHandlers(
  ctx: ApiContext,
): Pick<
  Handlers,
  'deviceAdd' | 'deviceEdit' | 'deviceRemove' | 'modbusTestRead' | 'devicesExport' | 'devicesImport'
> {
  const changes = createDeviceChanges(ctx);
  return {
    ...membershipHandlers(ctx, changes),
    modbusTestRead: async (a) => testRead(ctx.app, a.attributes),
    ...devicesTransferHandlers(ctx, changes),
  };
}

/** `deviceAdd` (after a test read when asked), `deviceEdit` and `deviceRemove`. */
function membershipHandlers(
  ctx: ApiContext,
  changes: DeviceChanges,
): Pick<Handlers, 'deviceAdd' | 'deviceEdit' | 'deviceRemove'> {
  const { app } = ctx;
  const { fleet } = app;
  return {
    deviceAdd: async (a, context) => {
      const actor = context.actor ?? DEFAULT_ACTOR;
      if (fleet.has(a.id)) fail('alreadyExists', `device '${a.id}' already exists`);
      const kind = fleet.kinds.get(a.kind);
      if (!kind)
        fail('unknownKind', `unknown kind '${a.kind}' (known: ${[...fleet.kinds.keys()].join(', ')})`);
      const attrs = kind!.parseAttributes(a.attributes);
      if (!attrs.ok) fail('badAttributes', attrs.message);
      const read = a.test ? await testReadBeforeAdding(ctx, a.kind, a.attributes) : null;
      const d = await changes.add(
        {
          id: a.id,
          kind: a.kind,
          ...(a.name ? { name: a.name } : {}),
          tags: a.tags,
          attributes: a.attributes,
        },
        actor,
        'api',
      );
      return { device: ctx.row(d), read };
    },

    deviceEdit: async (a, context) =>
      changes.edit(
        a.id,
        {
          ...(a.name !== undefined ? { name: a.name } : {}),
          ...(a.tags !== undefined ? { tags: a.tags } : {}),
          ...(a.attributes !== undefined ? { attributes: a.attributes } : {}),
        },
        context.actor ?? DEFAULT_ACTOR,
        'api',
      ),

    deviceRemove: async (a, context) => {
      const actor = context.actor ?? DEFAULT_ACTOR;
      const d = fleet.device(a.id) ?? fail('notFound', `no device '${a.id}'`);
      // Revoked first: what it still sends while it is being removed is not taken (it would be
      // listed as discovered again, or adopted again with automatic adoption).
      const brokerAccountRevoked = app.brokerAccounts?.revokeDevice(a.id) ?? false;
      const r = await fleet.removeDevice(a.id);
      if (!r.ok) fail(r.error.code, r.error.message);
      const purged = a.purge ? await app.store.purgeDeviceHistory(a.id) : null;
      // Written after a purge, so the removal itself stays on record.
      await auditDevice(app, a.id, 'remove', actor, {
        kind: d.kind,
        name: d.name,
        purge: a.purge,
        brokerAccountRevoked,
      });
      return { id: a.id, purged, brokerAccountRevoked };
    },
  };
}

/** `deviceAdd`'s test read: any failure becomes `testReadFailed`, so nothing is added. */
async function testReadBeforeAdding(
  ctx: ApiContext,
  kind: string,
  attributes: unknown,
): Promise<Results['deviceAdd']['read']> {
  if (kind !== MODBUS_KIND) fail('badRequest', `test: only ${MODBUS_KIND} devices can be read before adding`);
  try {
    return await testRead(ctx.app, attributes);
  } catch (error) {
    if (error instanceof ApiFailure)
      throw new ApiFailure(
        'testReadFailed',
        `the test read failed (${error.code}): ${error.message}; nothing was added`,
      );
    throw error;
  }
}
