/**
 * The fleet table of a cluster instance shows the whole fleet from two sources that never touch
 * each other: this instance's own devices, pushed live (the live store's map, mutated in place by
 * every diff's `devices`), and the other instances' devices (store/remote-rows.ts: each row with
 * `remote`, pushed as their owners signal changes in a diff's `remote`, and read whole from the
 * `devices` query when the stream starts and every minute). Neither source touches the other's
 * map, so neither can undo the other; where both name a device (its shard just moved here) the
 * own row wins. A device whose shard moved away leaves the own rows at once and is back as a
 * remote row once its new owner claims the shard (pushed then).
 *
 * {@link mergeRows} is a read-only map over both, made without copying either: the table sorts,
 * filters and selects over it as over the live map.
 *
 * @example
 * const devices = mergeRows(live.devices, remote);  // live first, then the remote rows not pushed
 * devices.get('pump-7')?.remote?.owner;             // 'beta'
 */
import type { DeviceRow } from '../../../src/host/contract.js';

class MergedRows implements ReadonlyMap<string, DeviceRow> {
  readonly size: number;

  constructor(
    private readonly own: ReadonlyMap<string, DeviceRow>,
    private readonly remote: ReadonlyMap<string, DeviceRow>,
  ) {
    let shadowed = 0;
    for (const id of remote.keys()) if (own.has(id)) shadowed++;
    this.size = own.size + remote.size - shadowed;
  }

  get(id: string): DeviceRow | undefined {
    return this.own.get(id) ?? this.remote.get(id);
  }

  has(id: string): boolean {
    return this.own.has(id) || this.remote.has(id);
  }

  *entries(): MapIterator<[string, DeviceRow]> {
    yield* this.own.entries();
    for (const entry of this.remote.entries()) if (!this.own.has(entry[0])) yield entry;
  }

  *keys(): MapIterator<string> {
    for (const [id] of this.entries()) yield id;
  }

  *values(): MapIterator<DeviceRow> {
    for (const [, row] of this.entries()) yield row;
  }

  [Symbol.iterator](): MapIterator<[string, DeviceRow]> {
    return this.entries();
  }

  forEach(fn: (row: DeviceRow, id: string, map: ReadonlyMap<string, DeviceRow>) => void): void {
    for (const [id, row] of this.entries()) fn(row, id, this);
  }
}

/** This instance's rows and the others' as one map; the same `own` when there are no remote rows. */
export function mergeRows(
  own: ReadonlyMap<string, DeviceRow>,
  remote: ReadonlyMap<string, DeviceRow>,
): ReadonlyMap<string, DeviceRow> {
  return remote.size === 0 ? own : new MergedRows(own, remote);
}
