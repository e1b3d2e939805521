/**
 * The fleet declared in the `--config` file: `"devices": [{ id, kind, name?, tags?, attributes? }]`
 * and `"prune": true|false`. At start the app reconciles the fleet to it: a listed device that is
 * missing is added, one whose name, tags or attributes differ is updated (new attributes restart
 * it), one listed with another kind is reported and left alone; a device that is not listed stays,
 * unless `prune` — then it is removed (its history kept). Each change is audited as
 * `device.audit` with the actor `config`. A malformed section stops the start, naming the field.
 *
 * @example
 * // fleetvisor.json: { "no-demo": true, "devices": [{ "id": "meter-1", "kind": "modbus.device", "attributes": { … } }] }
 * const declared = readDeclaredDevices(JSON.parse(text)); // { devices: [...], prune: false } | undefined
 * await reconcileDeclaredDevices(app.fleet, declared, audit); // { added: ['meter-1'], updated: [], … }
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { formatIssues } from '../devices/define-device.js';
import type { Fleet } from '../devices/fleet.js';
import type { JsonObject } from '../store/store.js';

const declaredDevice = z
  .object({
    id: z.string().min(1).max(64),
    kind: z.string().min(1).max(64),
    name: z.string().min(1).max(200).optional(),
    tags: z.array(z.string().min(1).max(64)).max(50).optional(),
    attributes: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const declaredSection = z.object({
  devices: z.array(declaredDevice).max(100_000).optional(),
  prune: z.boolean().optional(),
});

export interface DeclaredDevices {
  readonly devices: readonly z.infer<typeof declaredDevice>[];
  /** Remove devices the list does not name. */
  readonly prune: boolean;
}

/** The keys of a config file this module reads (the rest are flags). */
export const DECLARED_KEYS = ['devices', 'prune'] as const;

/**
 * The declared fleet of a parsed config file; undefined when it declares none. Throws with the
 * field named when the section is malformed (a config error, at the boundary).
 */
export function readDeclaredDevices(config: Record<string, unknown>): DeclaredDevices | undefined {
  if (config.devices === undefined && config.prune === undefined) return undefined;
  const r = declaredSection.safeParse({ devices: config.devices, prune: config.prune });
  if (!r.success) throw new Error(formatIssues(r.error));
  const seen = new Set<string>();
  for (const d of r.data.devices ?? []) {
    if (seen.has(d.id)) throw new Error(`devices: '${d.id}' is listed twice`);
    seen.add(d.id);
  }
  return { devices: r.data.devices ?? [], prune: r.data.prune ?? false };
}

export interface DeclaredOutcome {
  readonly added: string[];
  readonly updated: string[];
  readonly removed: string[];
  readonly unchanged: string[];
  /** Listed devices that could not be added or updated, with why (the rest went on). */
  readonly failed: { readonly id: string; readonly code: string; readonly message: string }[];
}

/** Brings the fleet to the declared list (see the module doc); one device at a time. */
export async function reconcileDeclaredDevices(
  fleet: Fleet,
  declared: DeclaredDevices,
  audit: (deviceId: string, action: string, data: JsonObject) => Promise<void>,
): Promise<DeclaredOutcome> {
  const out: DeclaredOutcome = { added: [], updated: [], removed: [], unchanged: [], failed: [] };
  const listed = new Set(declared.devices.map((d) => d.id));
  for (const d of declared.devices) {
    const existing = fleet.device(d.id);
    if (!existing) {
      const r = await fleet.addDevice({
        id: d.id,
        kind: d.kind,
        ...(d.name ? { name: d.name } : {}),
        tags: d.tags ?? [],
        attributes: d.attributes ?? {},
      });
      if (!r.ok && !(r.error.code === 'deviceFailed' && fleet.has(d.id))) {
        out.failed.push({ id: d.id, code: r.error.code, message: r.error.message });
        continue;
      }
      out.added.push(d.id);
      await audit(d.id, 'add', { kind: d.kind, via: 'config' });
      continue;
    }
    if (existing.kind !== d.kind) {
      out.failed.push({
        id: d.id,
        code: 'kindMismatch',
        message: `'${d.id}' is a ${existing.kind} in the fleet, not a ${d.kind}; remove it to change its kind`,
      });
      continue;
    }
    const r = await fleet.updateDevice(d.id, {
      ...(d.name ? { name: d.name } : {}),
      ...(d.tags ? { tags: d.tags } : {}),
      ...(d.attributes ? { attributes: d.attributes } : {}),
    });
    if (!r.ok) {
      out.failed.push({ id: d.id, code: r.error.code, message: r.error.message });
      continue;
    }
    if (r.value.changed.length === 0) {
      out.unchanged.push(d.id);
      continue;
    }
    out.updated.push(d.id);
    await audit(d.id, 'edit', { changed: [...r.value.changed], restarted: r.value.restarted, via: 'config' });
  }
  if (declared.prune)
    for (const d of fleet.list()) {
      if (listed.has(d.id)) continue;
      const r = await fleet.removeDevice(d.id);
      if (!r.ok) {
        out.failed.push({ id: d.id, code: r.error.code, message: r.error.message });
        continue;
      }
      out.removed.push(d.id);
      await audit(d.id, 'remove', { kind: d.kind, purge: false, via: 'config' });
    }
  return out;
}

/**
 * The declared fleet of the `--config FILE` on a command line, for the app's options: `{ devices }`
 * or `{}`. Throws naming the file and field when the section is malformed.
 */
export function declaredDevicesOption(
  argv: readonly string[],
  usageError: (message: string) => Error = (message) => new Error(message),
): { devices?: DeclaredDevices } {
  const i = argv.findIndex((a) => a === '--config' || a.startsWith('--config='));
  if (i < 0) return {};
  const file = argv[i]!.includes('=') ? argv[i]!.slice('--config='.length) : argv[i + 1];
  if (!file) return {};
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {}; // the flags' reader names the problem
  }
  try {
    const declared = readDeclaredDevices(json);
    return declared ? { devices: declared } : {};
  } catch (error) {
    throw usageError(`--config ${file}: ${(error as Error).message}`);
  }
}
