/**
 * The fleet's checks of what an operator sends, at the boundary and before anything is saved:
 * a new device ({@link checkNewDevice}: its id, kind, attributes and spec) and a patch
 * ({@link diffPatch}: what it changes). Pure: each answers the checked value, or the refusal
 * whose code names what was wrong.
 *
 * @example
 * const r = checkNewDevice({ id: 'pump-1', kind: 'fleetvisor.generic' }, { kinds, owns: undefined, has: () => false });
 * // { ok: true, value: { id: 'pump-1', kind, attributes: {}, spec: {} } }
 */

import type { DeviceRecord, JsonObject } from '../../store/store.js';
import type { DeviceKind } from '../define-device.js';
import { formatIssues } from '../define-device.js';
import type { DeviceId } from '../device-id.js';
import { parseDeviceId } from '../device-id.js';
import { fail } from './context.js';
import type { AddDeviceInput, DevicePatch, FleetResult } from './types.js';

type ParsedAttributes = Extract<ReturnType<DeviceKind['parseAttributes']>, { ok: true }>['value'];

/** A new device as checked: ready to be saved and started. */
export interface NewDevice {
  readonly id: DeviceId;
  readonly kind: DeviceKind;
  /** As the kind's schema parsed them (its machine's input). */
  readonly attributes: ParsedAttributes;
  /** `{}` when none was given. */
  readonly spec: JsonObject;
}

/** What the checks read of the fleet. */
export interface KnownDevices {
  readonly kinds: ReadonlyMap<string, DeviceKind>;
  /** A cluster instance's share; undefined: every device. */
  readonly owns: ((deviceId: string) => boolean) | undefined;
  has(deviceId: string): boolean;
}

/**
 * Checks a device to add, in this order: `badDeviceId`, `alreadyExists`, `notOwner` (another
 * cluster instance's shard), `unknownKind`, `badAttributes`, `badSpec`.
 */
export function checkNewDevice(input: AddDeviceInput, known: KnownDevices): FleetResult<NewDevice> {
  const { kinds } = known;
  const id = parseDeviceId(input.id);
  if (!id.ok) return fail('badDeviceId', id.error.message);
  if (known.has(id.value)) return fail('alreadyExists', `device '${id.value}' already exists`);
  if (known.owns && !known.owns(id.value))
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
  return { ok: true, value: { id: id.value, kind, attributes: attrs.value, spec } };
}

/** What a patch changes of a device. */
export interface PatchChanges {
  /** The fields that differ, of `name`, `tags`, `attributes`, in that order. */
  readonly changed: string[];
  /** The new attributes as the kind parsed them; undefined when they are the same. */
  readonly attributes: JsonObject | undefined;
}

/** Compares a patch with the device's record; `badAttributes` when its kind refuses them. */
export function diffPatch(
  record: DeviceRecord,
  kind: DeviceKind,
  patch: DevicePatch,
): FleetResult<PatchChanges> {
  let attributes: JsonObject | undefined;
  if (patch.attributes !== undefined) {
    const attrs = kind.parseAttributes(patch.attributes);
    if (!attrs.ok) return fail('badAttributes', attrs.message);
    const parsed = attrs.value as JsonObject;
    if (JSON.stringify(parsed) !== JSON.stringify(record.attributes)) attributes = parsed;
  }
  const changed: string[] = [];
  if (patch.name !== undefined && patch.name !== record.name) changed.push('name');
  if (patch.tags !== undefined && JSON.stringify(patch.tags) !== JSON.stringify(record.tags))
    changed.push('tags');
  if (attributes) changed.push('attributes');
  return { ok: true, value: { changed, attributes } };
}
