/**
 * Bad data never stops the app: a corrupt or unknown row written behind the store's back (here,
 * directly with the engine's own client) fails only that row, with a clear reason; the rest loads.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/store.js';
import { StoreError } from '../../src/store/store.js';
import type { StoreEngine } from './contract.js';

const T = 1_750_000_000_000;
const KINDS = ['generic', 'sensor'];

export function defineBadDataContract(engine: StoreEngine): void {
  describe(`${engine.name} store: bad stored data`, () => {
    let store: Store;

    beforeEach(async () => {
      await engine.fresh();
      store = await engine.open({ now: () => T });
      for (const id of ['d1', 'd2', 'd3', 'd4']) {
        await store.upsertDevice({ id, kind: 'generic', name: id.toUpperCase() });
        await store.saveSnapshot({
          deviceId: id,
          kind: 'generic',
          snapshot: { value: 'connected' },
          deadlines: [{ label: 'heartbeat', wallDeadlineMs: T + 30_000, delayMs: 30_000 }],
          version: 1,
        });
      }
      await store.close();
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    async function reopen(): Promise<Store> {
      store = await engine.open({ now: () => T });
      return store;
    }

    it('a snapshot that is not valid JSON fails that device (badSnapshot); the others load', async () => {
      await engine.exec("UPDATE snapshots SET snapshot = '{\"value\": \"conn' WHERE device_id = 'd2'");
      const loaded = await (await reopen()).loadSnapshots({ knownKinds: KINDS });
      expect(loaded.map((l) => [l.deviceId, l.ok])).toEqual([
        ['d1', true],
        ['d2', false],
        ['d3', true],
        ['d4', true],
      ]);
      const failed = loaded[1]!;
      expect(failed).toMatchObject({
        ok: false,
        deviceId: 'd2',
        kind: 'generic',
        error: { code: 'badSnapshot' },
      });
      if (!failed.ok)
        expect(failed.error.message).toMatch(
          /^the stored snapshot of device 'd2' cannot be restored: snapshot is not valid JSON \(.+\)$/,
        );
    });

    it('deadlines of the wrong shape fail that device (badSnapshot), naming the field', async () => {
      await engine.exec(
        `UPDATE snapshots SET deadlines = '[{"label":"heartbeat","wallDeadlineMs":"soon","delayMs":1}]' WHERE device_id = 'd3'`,
      );
      await engine.exec("UPDATE snapshots SET deadlines = 'nope' WHERE device_id = 'd4'");
      const loaded = await (await reopen()).loadSnapshots({ knownKinds: KINDS });
      const errors = Object.fromEntries(
        loaded.filter((l) => !l.ok).map((l) => [l.deviceId, !l.ok && l.error]),
      );
      expect(errors).toEqual({
        d3: {
          code: 'badSnapshot',
          message:
            "the stored snapshot of device 'd3' cannot be restored: deadlines [0].wallDeadlineMs must be a finite number",
        },
        d4: {
          code: 'badSnapshot',
          message: expect.stringMatching(
            /^the stored snapshot of device 'd4' cannot be restored: deadlines is not valid JSON/,
          ),
        },
      });
      expect(loaded.filter((l) => l.ok).map((l) => l.deviceId)).toEqual(['d1', 'd2']);
    });

    it('a snapshot of a kind the app does not know fails that device (unknownKind)', async () => {
      await engine.exec("UPDATE snapshots SET kind = 'toaster' WHERE device_id = 'd1'");
      const loaded = await (await reopen()).loadSnapshots({ knownKinds: KINDS });
      expect(loaded[0]).toEqual({
        ok: false,
        deviceId: 'd1',
        kind: 'toaster',
        error: {
          code: 'unknownKind',
          message:
            "device 'd1' has kind 'toaster', which this app does not know (known kinds: generic, sensor)",
        },
      });
      expect(loaded.slice(1).every((l) => l.ok)).toBe(true);
      // The caller decides which kinds exist: without knownKinds the snapshot loads.
      expect((await store.loadSnapshot('d1'))?.ok).toBe(true);
    });

    it("the caller's validator refuses a snapshot with its reason (badSnapshot), even by throwing", async () => {
      const loaded = await (await reopen()).loadSnapshots({
        knownKinds: KINDS,
        validate: (record) => {
          if (record.deviceId === 'd1') return 'state "connected" needs context.link';
          if (record.deviceId === 'd2') throw new Error('validator crashed');
          return undefined;
        },
      });
      expect(loaded.map((l) => (l.ok ? 'ok' : l.error.message))).toEqual([
        'the stored snapshot of device \'d1\' was refused: state "connected" needs context.link',
        "the stored snapshot of device 'd2' was refused: validator crashed",
        'ok',
        'ok',
      ]);
    });

    it('a device row with corrupt JSON is a per-row badRecord in the list and from getDevice', async () => {
      await engine.exec("UPDATE devices SET tags = '[\"a\",' WHERE id = 'd2'");
      await engine.exec("UPDATE devices SET spec = '[1,2]' WHERE id = 'd3'");
      const devices = await (await reopen()).listDevices();
      expect(devices.map((d) => d.ok)).toEqual([true, false, false, true]);
      expect(devices[1]).toMatchObject({ ok: false, id: 'd2', error: { code: 'badRecord' } });
      expect(!devices[1]!.ok && devices[1]!.error.message).toMatch(
        /^stored device 'd2': tags is not valid JSON/,
      );
      expect(!devices[2]!.ok && devices[2]!.error.message).toBe(
        "stored device 'd3': spec is not a JSON object",
      );
      expect(await store.getDevice('d2')).toMatchObject({ ok: false, error: { code: 'badRecord' } });
      // An update that keeps the corrupt field commits and says so; sending the field repairs the row.
      const kept = await store.upsertDevice({ id: 'd2', kind: 'generic', name: 'D2 renamed' });
      expect(kept).toMatchObject({ ok: false, id: 'd2', error: { code: 'badRecord' } });
      expect(!kept.ok && kept.error.message).toMatch(
        /^saved, but stored device 'd2': tags is not valid JSON/,
      );
      const repaired = await store.upsertDevice({ id: 'd2', kind: 'generic', name: 'D2 renamed', tags: [] });
      expect(repaired).toMatchObject({ ok: true, value: { name: 'D2 renamed', tags: [] } });
    });

    it('a corrupt event or command row is a per-row badRecord; its page still loads', async () => {
      await reopen();
      await store.appendEvents([1, 2, 3].map((i) => ({ at: T + i, kind: 'k', data: { i } })));
      await store.recordCommand({
        commandId: 'c1',
        deviceId: 'd1',
        action: 'a',
        args: {},
        actor: 'ana',
        requestedAt: T,
      });
      await store.recordCommand({
        commandId: 'c2',
        deviceId: 'd1',
        action: 'a',
        args: {},
        actor: 'ana',
        requestedAt: T,
      });
      await store.close();
      await engine.exec("UPDATE events SET data = '{oops' WHERE seq = 2");
      await engine.exec("UPDATE commands SET status = 'exploded' WHERE command_id = 'c1'");
      await reopen();
      const events = await store.queryEvents({ limit: 10 });
      expect(events.items.map((e) => e.ok)).toEqual([true, false, true]);
      expect(events.items[1]).toMatchObject({ ok: false, id: '2', error: { code: 'badRecord' } });
      expect(!events.items[1]!.ok && events.items[1]!.error.message).toMatch(
        /^stored event #2: data is not valid JSON/,
      );
      const commands = await store.queryCommands({ limit: 10 });
      expect(commands.items.map((c) => c.ok)).toEqual([true, false]);
      expect(commands.items[1]).toEqual({
        ok: false,
        id: 'c1',
        error: {
          code: 'badRecord',
          message: 'stored command \'c1\': status "exploded" is not a command status',
        },
      });
    });

    it('a database from a newer app is refused with a clear message instead of being read', async () => {
      await engine.setSchemaVersion(engine.schemaVersion + 3);
      const error = await engine.open().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect(error).toMatchObject({ code: 'databaseTooNew' });
      expect((error as Error).message).toMatch(
        new RegExp(
          `has schema version ${engine.schemaVersion + 3}, but this Fleetvisor understands schema versions up to ${engine.schemaVersion}\\. It was written by a newer Fleetvisor: update Fleetvisor`,
        ),
      );
    });
  });
}
