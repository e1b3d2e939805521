/**
 * The generic kind's actions: each one has a lasting effect. `disconnect` had none (the link is
 * up, so the device was back to connected within a second: issue 13 §6) and is not offered.
 * `update` sent nothing to the device, timed out back to connected and was logged as succeeded
 * (issue 14): it is not offered either; firmware updates are the firmware workflow's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { describeKind } from '../../src/devices/define-device.js';
import { createFleet } from '../../src/devices/fleet.js';
import { genericDevice } from '../../src/devices/generic-device.js';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { tempDir } from '../store/helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('generic device kind', () => {
  it('offers no disconnect action, whose effect the live link undid at once', () => {
    const names = describeKind(genericDevice).actions.map((a) => a.name);
    expect(names).not.toContain('disconnect');
    expect(names).toEqual(expect.arrayContaining(['connect', 'ping', 'reboot']));
  });

  it('offers no update action: asking for one is refused as unknown and nothing is logged as done', async () => {
    const described = describeKind(genericDevice);
    expect(described.actions.map((a) => a.name)).not.toContain('update');
    expect(described.actions.map((a) => a.name)).not.toContain('cancelUpdate');

    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const clock = createSimulatedClock({ wallStartMs: 1_800_000_000_000 });
    const store = await openSqliteStore({ file: tmp.file, telemetryFlushMs: 0, now: () => clock.wallNow() });
    const fleet = createFleet({ runtime: createRuntime({ clock }), store, kinds: [genericDevice] });
    cleanups.push(async () => {
      await fleet.stop().catch(() => {});
      await store.close().catch(() => {});
    });
    await fleet.start();
    expect((await fleet.addDevice({ id: 'g1', kind: 'fleetvisor.generic' })).ok).toBe(true);
    await fleet.act('g1', 'connect', {});
    fleet.machineOf('g1')!.send({ type: 'HELLO', firmware: '1.0.0' });
    expect(fleet.device('g1')!.state).toBe('connected');

    for (const [action, args] of [
      ['update', { version: '2.0.0' }],
      ['cancelUpdate', {}],
    ] as const)
      expect(await fleet.act('g1', action, args, 'alice')).toMatchObject({
        ok: false,
        error: { code: 'unknownAction' },
      });
    expect(fleet.device('g1')!.state).toBe('connected');
    await fleet.flush();
    const audit = await store.queryCommands({ deviceId: 'g1', limit: 10 });
    const logged = audit.items.map((c) => c.ok && [c.value.action, c.value.status]);
    expect(logged).toEqual([['connect', 'succeeded']]);
  });
});
