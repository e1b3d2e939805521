/**
 * Devices managed from the app: `deviceAdd`, `deviceEdit`, `deviceRemove`, `modbusTestRead`,
 * `devicesExport` and `devicesImport`. Attributes are validated by the device's kind (its zod
 * schema, the same the fleet uses on load); every change is audited in the event log as
 * `device.audit` (`{ action, actor, … }`, durable) with the actor the transport names.
 *
 * Removing a device keeps its telemetry, events and commands (history) unless `purge`; its
 * broker account, when it has one, is revoked either way.
 *
 * @example
 * await api.call('deviceAdd', { id: 'meter-1', kind: 'modbus.device', attributes, test: true });
 * // { ok: true, value: { device: { id: 'meter-1', … }, read: { values: { voltage: 230.1 } } } }
 */

import { ModbusBridge } from '../../conventions/modbus/modbus-bridge.js';
import { MODBUS_KIND } from '../../conventions/modbus/modbus-kind.js';
import type { DeviceView } from '../../devices/fleet.js';
import { formatCsv, parseCsv } from '../../lib/csv.js';
import type { JsonObject } from '../../store/store.js';
import type { App } from '../app.js';
import type { DeviceRecordView, ImportRowResult, Json, Results } from '../contract.js';
import type { ApiContext, Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

/** The actor when the transport names none. */
const DEFAULT_ACTOR = 'api';

/** The event kind of every audited change to the fleet's membership. */
export const DEVICE_AUDIT_EVENT = 'device.audit';

/** The CSV columns of an export (tags joined by `;`, attributes as JSON). */
export const DEVICE_CSV_COLUMNS = ['id', 'kind', 'name', 'tags', 'attributes'] as const;

/** The fleet's refusals in the contract's words. */
const CODES: Record<string, string> = {
  notFound: 'notFound',
  badDeviceId: 'badRequest',
  badAttributes: 'badRequest',
  unknownKind: 'badRequest',
  alreadyExists: 'conflict',
  stopped: 'unavailable',
};

const fail = (code: string, message: string): never => {
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

/** The running Modbus bridge (a child `modbus` of the links supervisor), if any. */
function modbusBridge(app: App): ModbusBridge | undefined {
  const child = app.links.supervisor?.whichChildren().find((c) => c.process instanceof ModbusBridge);
  return child?.process as ModbusBridge | undefined;
}

async function testRead(app: App, attributes: unknown): Promise<{ values: Record<string, number> }> {
  const bridge =
    modbusBridge(app) ??
    fail('unavailable', 'the Modbus bridge is not running (is the modbus convention on?)');
  const r = await bridge.testRead(attributes);
  if (!r.ok) fail(r.code === 'badAttributes' ? 'badRequest' : r.code, r.message);
  return { values: (r as { values: Record<string, number> }).values };
}

export function recordOf(d: DeviceView): DeviceRecordView {
  return { id: d.id, kind: d.kind, name: d.name, tags: [...d.tags], attributes: d.attributes as Json };
}

/** The rows of an import's text, each as a record to validate, or why the row does not parse. */
function rowsOf(
  text: string,
  format: 'json' | 'csv' | undefined,
): { row: number; input: unknown; error?: string }[] {
  const f = format ?? (/^\s*[[{]/.test(text) ? 'json' : 'csv');
  if (f === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      fail('badRequest', `the text is not JSON: ${(error as Error).message}`);
    }
    const list = Array.isArray(value) ? value : (value as { devices?: unknown } | null)?.devices;
    if (!Array.isArray(list))
      fail('badRequest', 'JSON: an array of devices (or { "devices": [...] }) expected');
    return (list as unknown[]).map((input, i) => ({ row: i + 1, input }));
  }
  const parsed = parseCsv(text);
  if (!parsed.ok) fail('badRequest', `CSV: ${parsed.error.message}`);
  const [header, ...lines] = (parsed as { value: string[][] }).value;
  const columns = (header ?? []).map((h) => h.trim());
  if (!columns.includes('id') || !columns.includes('kind'))
    fail(
      'badRequest',
      `CSV: the header must name at least id and kind (columns: ${DEVICE_CSV_COLUMNS.join(',')})`,
    );
  return lines.map((cells, i) => {
    const get = (name: string) => {
      const at = columns.indexOf(name);
      return at < 0 ? undefined : cells[at];
    };
    const attributesText = get('attributes');
    let attributes: unknown = {};
    if (attributesText !== undefined && attributesText.trim() !== '')
      try {
        attributes = JSON.parse(attributesText);
      } catch (error) {
        return {
          row: i + 1,
          input: { id: get('id') },
          error: `attributes: not JSON (${(error as Error).message})`,
        };
      }
    const tags = get('tags');
    const name = get('name');
    return {
      row: i + 1,
      input: {
        id: get('id'),
        kind: get('kind'),
        ...(name ? { name } : {}),
        tags: tags
          ? tags
              .split(';')
              .map((t) => t.trim())
              .filter((t) => t !== '')
          : [],
        attributes,
      },
    };
  });
}

const asString = (v: unknown) => (typeof v === 'string' ? v : undefined);

export function devicesAdminHandlers(
  ctx: ApiContext,
): Pick<
  Handlers,
  'deviceAdd' | 'deviceEdit' | 'deviceRemove' | 'modbusTestRead' | 'devicesExport' | 'devicesImport'
> {
  const { app } = ctx;
  const { fleet } = app;

  async function add(
    input: { id: string; kind: string; name?: string; tags: readonly string[]; attributes: unknown },
    actor: string,
    via: string,
  ): Promise<DeviceView> {
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
  }

  async function edit(
    id: string,
    patch: { name?: string; tags?: readonly string[]; attributes?: unknown },
    actor: string,
    via: string,
  ): Promise<Results['deviceEdit']> {
    const r = await fleet.updateDevice(id, patch);
    if (!r.ok) fail(r.error.code, r.error.message);
    const u = (r as { value: { device: DeviceView; changed: readonly string[]; restarted: boolean } }).value;
    if (u.changed.length > 0)
      await auditDevice(app, id, 'edit', actor, {
        changed: [...u.changed],
        restarted: u.restarted,
        ...(via !== 'api' ? { via } : {}),
      });
    return { device: ctx.row(fleet.device(id) ?? u.device), changed: u.changed, restarted: u.restarted };
  }

  return {
    deviceAdd: async (a, context) => {
      const actor = context.actor ?? DEFAULT_ACTOR;
      if (fleet.has(a.id)) fail('alreadyExists', `device '${a.id}' already exists`);
      const kind = fleet.kinds.get(a.kind);
      if (!kind)
        fail('unknownKind', `unknown kind '${a.kind}' (known: ${[...fleet.kinds.keys()].join(', ')})`);
      const attrs = kind!.parseAttributes(a.attributes);
      if (!attrs.ok) fail('badAttributes', attrs.message);
      let read: Results['deviceAdd']['read'] = null;
      if (a.test) {
        if (a.kind !== MODBUS_KIND)
          fail('badRequest', `test: only ${MODBUS_KIND} devices can be read before adding`);
        try {
          read = await testRead(app, a.attributes);
        } catch (error) {
          if (error instanceof ApiFailure)
            throw new ApiFailure(
              'testReadFailed',
              `the test read failed (${error.code}): ${error.message}; nothing was added`,
            );
          throw error;
        }
      }
      const d = await add(
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
      edit(
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
      const r = await fleet.removeDevice(a.id);
      if (!r.ok) fail(r.error.code, r.error.message);
      const brokerAccountRevoked = app.brokerAccounts?.revokeDevice(a.id) ?? false;
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

    modbusTestRead: async (a) => testRead(app, a.attributes),

    devicesExport: async (a) => {
      const records = fleet
        .list()
        .filter((d) => (!a.kind || d.kind === a.kind) && (!a.tag || d.tags.includes(a.tag)))
        .sort((x, y) => x.id.localeCompare(y.id))
        .map(recordOf);
      const text =
        a.format === 'json'
          ? `${JSON.stringify(records, null, 2)}\n`
          : formatCsv([
              [...DEVICE_CSV_COLUMNS],
              ...records.map((r) => [r.id, r.kind, r.name, r.tags.join(';'), JSON.stringify(r.attributes)]),
            ]);
      return { format: a.format, count: records.length, text };
    },

    devicesImport: async (a, context) => {
      const actor = context.actor ?? DEFAULT_ACTOR;
      const results: ImportRowResult[] = [];
      const seen = new Set<string>();
      for (const { row, input, error } of rowsOf(a.text, a.format)) {
        const o = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
        const id = asString(o.id) ?? null;
        const refuse = (code: string, message: string) =>
          results.push({ row, id, ok: false, outcome: 'failed', error: { code, message } });
        if (error) {
          refuse('badRequest', error);
          continue;
        }
        const kindName = asString(o.kind);
        const name = o.name === undefined ? undefined : asString(o.name);
        const tags = o.tags === undefined ? [] : o.tags;
        if (!id || !kindName) {
          refuse('badRequest', 'id and kind (strings) are required');
          continue;
        }
        if (seen.has(id)) {
          refuse('badRequest', `'${id}' appears twice in the import`);
          continue;
        }
        seen.add(id);
        if (
          (o.name !== undefined && name === undefined) ||
          !Array.isArray(tags) ||
          !tags.every((t) => typeof t === 'string')
        ) {
          refuse('badRequest', 'name must be a string and tags a list of strings');
          continue;
        }
        const kind = fleet.kinds.get(kindName);
        if (!kind) {
          refuse('badRequest', `unknown kind '${kindName}' (known: ${[...fleet.kinds.keys()].join(', ')})`);
          continue;
        }
        const attributes = o.attributes ?? {};
        const parsed = kind.parseAttributes(attributes);
        if (!parsed.ok) {
          refuse('badRequest', `attributes: ${parsed.message}`);
          continue;
        }
        try {
          const existing = fleet.device(id);
          if (existing) {
            if (existing.kind !== kindName) {
              refuse('conflict', `'${id}' exists as a ${existing.kind}, not a ${kindName}; remove it first`);
              continue;
            }
            const u = await edit(
              id,
              { ...(name ? { name } : {}), tags: tags as string[], attributes },
              actor,
              'import',
            );
            results.push({ row, id, ok: true, outcome: u.changed.length > 0 ? 'updated' : 'unchanged' });
          } else {
            await add(
              { id, kind: kindName, ...(name ? { name } : {}), tags: tags as string[], attributes },
              actor,
              'import',
            );
            results.push({ row, id, ok: true, outcome: 'added' });
          }
        } catch (e) {
          if (!(e instanceof ApiFailure)) throw e;
          refuse(e.code, e.message);
        }
      }
      const count = (outcome: ImportRowResult['outcome']) =>
        results.filter((r) => r.outcome === outcome).length;
      return {
        results,
        added: count('added'),
        updated: count('updated'),
        unchanged: count('unchanged'),
        failed: count('failed'),
      };
    },
  };
}
