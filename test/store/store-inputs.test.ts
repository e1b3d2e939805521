/**
 * A store call's arguments as its statement's parameters (src/store/store-inputs.ts), and what a
 * statement's outcome answers (src/store/store-outcomes.ts): the same for both engines, so checked
 * here once without a database. The contract suite (test/store/contract.ts) runs them on both.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceRow } from '../../src/store/rows.js';
import { StoreError } from '../../src/store/store.js';
import {
  commandParams,
  commandUpdateParams,
  deviceParams,
  knownKindsOf,
  snapshotParams,
  statusParams,
} from '../../src/store/store-inputs.js';
import {
  commandRecorded,
  commandUpdated,
  deviceChanged,
  deviceFound,
  upsertedDevice,
} from '../../src/store/store-outcomes.js';

function fieldOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (e) {
    if (e instanceof StoreError && e.code === 'invalidArgument') return e.field;
    throw e;
  }
  return undefined;
}

/** A clock that counts its reads, to see that a refused call never reads it. */
function clock(at: number) {
  const c = {
    reads: 0,
    now: () => {
      c.reads++;
      return at;
    },
  };
  return c;
}

describe('deviceParams', () => {
  it('keeps fields left out as null (the upsert keeps the stored value), the time last', () => {
    const c = clock(42);
    expect(deviceParams({ id: 'pump-1', kind: 'pump', name: 'Pump' }, c.now)).toEqual([
      'pump-1',
      'pump',
      'Pump',
      null,
      null,
      null,
      null,
      42,
    ]);
    expect(
      deviceParams(
        { id: 'p', kind: 'k', name: 'n', tags: ['a'], attributes: { x: 1 }, spec: {}, status: { up: true } },
        c.now,
      ),
    ).toEqual(['p', 'k', 'n', '["a"]', '{"x":1}', '{}', '{"up":true}', 42]);
  });

  it('names the first bad field, in the order of the record, and reads no clock then', () => {
    const c = clock(1);
    expect(fieldOf(() => deviceParams({ id: '', kind: '', name: 'n' }, c.now))).toBe('device.id');
    expect(fieldOf(() => deviceParams({ id: 'p', kind: '', name: '' }, c.now))).toBe('device.kind');
    expect(
      fieldOf(() => deviceParams({ id: 'p', kind: 'k', name: 'n', tags: [1 as unknown as string] }, c.now)),
    ).toBe('device.tags[0]');
    expect(
      fieldOf(() => deviceParams({ id: 'p', kind: 'k', name: 'n', spec: [] as unknown as { a: 1 } }, c.now)),
    ).toBe('device.spec');
    expect(c.reads).toBe(0);
  });
});

describe('statusParams and snapshotParams', () => {
  it('put the values in the order of their statements', () => {
    expect(statusParams('pump-1', { up: true }, () => 7)).toEqual(['{"up":true}', 7, 'pump-1']);
    expect(
      snapshotParams(
        { deviceId: 'pump-1', kind: 'pump', snapshot: { s: 1 }, deadlines: [], version: 3 },
        () => 9,
      ),
    ).toEqual(['pump-1', 'pump', '{"s":1}', '[]', 3, 9]);
  });

  it('name the bad field', () => {
    expect(fieldOf(() => statusParams('pump-1', null as unknown as { a: 1 }, () => 0))).toBe('status');
    expect(
      fieldOf(() =>
        snapshotParams({ deviceId: 'p', kind: 'k', snapshot: {}, deadlines: [], version: -1 }, () => 0),
      ),
    ).toBe('snapshot.version');
  });

  it('knownKindsOf: a set of the kinds, or undefined for any kind', () => {
    expect(knownKindsOf({ knownKinds: ['a', 'b'] })).toEqual(new Set(['a', 'b']));
    expect(knownKindsOf({})).toBeUndefined();
  });
});

describe('commandParams and commandUpdateParams', () => {
  it('record a command pending by default, without expiry', () => {
    expect(
      commandParams({
        commandId: 'c1',
        deviceId: 'p',
        action: 'reboot',
        args: { n: 1 },
        actor: 'ui',
        requestedAt: 5.6,
      }),
    ).toEqual(['c1', 'p', 'reboot', '{"n":1}', 'ui', 'pending', 6, null]);
  });

  it('an update keeps what it leaves out (null), its error as JSON { code, message }', () => {
    expect(commandUpdateParams('c1', { status: 'sent' })).toEqual(['sent', null, null, null, 'c1']);
    expect(
      commandUpdateParams('c1', {
        status: 'failed',
        result: { ok: false },
        error: { code: 'timeout', message: 'no reply' },
        completedAt: 10,
      }),
    ).toEqual(['failed', '{"ok":false}', '{"code":"timeout","message":"no reply"}', 10, 'c1']);
  });

  it('name the bad field', () => {
    expect(fieldOf(() => commandUpdateParams('', { status: 'sent' }))).toBe('commandId');
    expect(fieldOf(() => commandUpdateParams('c1', { status: 'gone' as 'sent' }))).toBe('update.status');
    expect(
      fieldOf(() =>
        commandUpdateParams('c1', {
          status: 'failed',
          error: { code: 'x', message: 1 as unknown as string },
        }),
      ),
    ).toBe('update.error.message');
  });
});

describe('outcomes', () => {
  const row: DeviceRow = {
    id: 'pump-1',
    kind: 'pump',
    name: 'Pump',
    tags: '[]',
    attributes: '{}',
    spec: '{}',
    status: '{}',
    created_at: 1,
    updated_at: 2,
  };

  it('rows changed: ok, or the expected outcome naming the id', () => {
    expect(deviceChanged(1, 'p')).toEqual({ ok: true, value: undefined });
    expect(deviceChanged(0, 'p')).toEqual({
      ok: false,
      error: { code: 'notFound', message: "no device 'p'" },
    });
    expect(commandRecorded(0, 'c1')).toEqual({
      ok: false,
      error: { code: 'alreadyRecorded', message: "command 'c1' is already recorded" },
    });
    expect(commandUpdated(0, 'c1')).toEqual({
      ok: false,
      error: { code: 'notFound', message: "no command 'c1' was recorded" },
    });
  });

  it('a device row: its record, notFound, or badRecord (saved, but …) after an upsert', () => {
    const found = deviceFound(row, 'pump-1');
    expect(found.ok && found.value.createdAt).toBe(1);
    expect(deviceFound(undefined, 'x')).toEqual({
      ok: false,
      error: { code: 'notFound', message: "no device 'x'" },
    });
    const corrupt = upsertedDevice({ ...row, tags: '[' }, 'pump-1');
    expect(corrupt.ok).toBe(false);
    if (!corrupt.ok) expect(corrupt.error.message).toMatch(/^saved, but stored device 'pump-1': tags /);
    expect(() => upsertedDevice(undefined, 'pump-1')).toThrow(/was not returned by its upsert/);
  });
});
