/**
 * The fleet as a file and back (`devicesExport`, `devicesImport`): every device's id, kind, name,
 * tags and attributes as JSON or CSV; an import adds or updates row by row through the same
 * audited changes as the UI, each row failing alone.
 *
 * @example
 * await api.call('devicesImport', { text: 'id,kind\nmeter-1,modbus.device\n' });
 * // { ok: true, value: { results: [{ row: 1, id: 'meter-1', ok: false, outcome: 'failed', … }], … } }
 */
import type { DeviceView } from '../../devices/fleet.js';
import { formatCsv, parseCsv } from '../../lib/csv.js';
import type { App } from '../app.js';
import type { DeviceRecordView, ImportRowResult, Json } from '../contract.js';
import type { DeviceChanges } from './device-changes.js';
import { DEFAULT_ACTOR, fail } from './device-changes.js';
import type { ApiContext, Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';

/** The CSV columns of an export (tags joined by `;`, attributes as JSON). */
export const DEVICE_CSV_COLUMNS = ['id', 'kind', 'name', 'tags', 'attributes'] as const;

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

type Fleet = App['fleet'];

/** One row that passed the checks, as the fleet takes it. */
interface CheckedRow {
  readonly id: string;
  readonly kindName: string;
  readonly name: string | undefined;
  readonly tags: string[];
  readonly attributes: unknown;
}

/** The row's fields, or why it is refused (`id` claimed in `seen` once it is known and unique). */
function checkRow(
  fleet: Fleet,
  o: Record<string, unknown>,
  id: string | null,
  seen: Set<string>,
): CheckedRow | { code: string; message: string } {
  const kindName = asString(o.kind);
  const name = o.name === undefined ? undefined : asString(o.name);
  const tags = o.tags === undefined ? [] : o.tags;
  if (!id || !kindName) return { code: 'badRequest', message: 'id and kind (strings) are required' };
  if (seen.has(id)) return { code: 'badRequest', message: `'${id}' appears twice in the import` };
  seen.add(id);
  if (
    (o.name !== undefined && name === undefined) ||
    !Array.isArray(tags) ||
    !tags.every((t) => typeof t === 'string')
  )
    return { code: 'badRequest', message: 'name must be a string and tags a list of strings' };
  const kind = fleet.kinds.get(kindName);
  if (!kind)
    return {
      code: 'badRequest',
      message: `unknown kind '${kindName}' (known: ${[...fleet.kinds.keys()].join(', ')})`,
    };
  const attributes = o.attributes ?? {};
  const parsed = kind.parseAttributes(attributes);
  if (!parsed.ok) return { code: 'badRequest', message: `attributes: ${parsed.message}` };
  return { id, kindName, name, tags: tags as string[], attributes };
}

/** One row's outcome; the fleet's refusal of a row fails that row alone. */
async function importRow(
  fleet: Fleet,
  changes: DeviceChanges,
  { row, input, error }: { row: number; input: unknown; error?: string },
  seen: Set<string>,
  actor: string,
): Promise<ImportRowResult> {
  const o = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const id = asString(o.id) ?? null;
  const refuse = (code: string, message: string): ImportRowResult => ({
    row,
    id,
    ok: false,
    outcome: 'failed',
    error: { code, message },
  });
  if (error) return refuse('badRequest', error);
  const r = checkRow(fleet, o, id, seen);
  if ('code' in r) return refuse(r.code, r.message);
  const { kindName, name, tags, attributes } = r;
  try {
    const existing = fleet.device(r.id);
    if (existing) {
      if (existing.kind !== kindName)
        return refuse(
          'conflict',
          `'${r.id}' exists as a ${existing.kind}, not a ${kindName}; remove it first`,
        );
      const u = await changes.edit(r.id, { ...(name ? { name } : {}), tags, attributes }, actor, 'import');
      return { row, id: r.id, ok: true, outcome: u.changed.length > 0 ? 'updated' : 'unchanged' };
    }
    await changes.add(
      { id: r.id, kind: kindName, ...(name ? { name } : {}), tags, attributes },
      actor,
      'import',
    );
    return { row, id: r.id, ok: true, outcome: 'added' };
  } catch (e) {
    if (!(e instanceof ApiFailure)) throw e;
    return refuse(e.code, e.message);
  }
}

export function devicesTransferHandlers(
  ctx: ApiContext,
  changes: DeviceChanges,
): Pick<Handlers, 'devicesExport' | 'devicesImport'> {
  const { fleet } = ctx.app;

  return {
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
      for (const row of rowsOf(a.text, a.format))
        results.push(await importRow(fleet, changes, row, seen, actor));
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
