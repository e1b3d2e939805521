/**
 * The Store's behaviour on every engine: devices, snapshots, telemetry (batching, buckets,
 * invalid points, overload, pruning), the event log and the command audit log.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store, TelemetryPoint } from '../../src/store/store.js';
import { StoreError } from '../../src/store/store.js';
import type { ContractStoreOptions, StoreEngine } from './contract.js';
import { recordingLogger, sleep } from './helpers.js';

const T = 1_750_000_000_000;

export function defineCoreContract(engine: StoreEngine): void {
  describe(`${engine.name} store`, () => {
    let store: Store;
    let clock: number;

    async function open(options: Partial<ContractStoreOptions> = {}): Promise<Store> {
      return engine.open({ now: () => clock, ...options });
    }

    beforeEach(async () => {
      await engine.fresh();
      clock = T;
      store = await open();
    });
    afterEach(async () => {
      await store.close();
      await engine.cleanup();
    });

    const point = (metric: string, receivedAt: number, value: number, deviceId = 'd1'): TelemetryPoint => ({
      deviceId,
      metric,
      deviceTs: receivedAt - 5,
      receivedAt,
      value,
    });

    it('answers every call after close with a closed error', async () => {
      await store.close();
      await expect(store.listDevices()).rejects.toMatchObject({ code: 'closed' });
      await expect(store.appendTelemetry([point('t', T, 1)])).rejects.toMatchObject({ code: 'closed' });
      await expect(
        store.saveSnapshot({ deviceId: 'd', kind: 'k', snapshot: 1, deadlines: [], version: 1 }),
      ).rejects.toBeInstanceOf(StoreError);
      await store.close(); // idempotent
    });

    describe('devices', () => {
      it('creates, updates (keeping createdAt and omitted fields) and reads back', async () => {
        const created = await store.upsertDevice({
          id: 'pump-1',
          kind: 'generic',
          name: 'Pump 1',
          tags: ['hall-a', 'pumps'],
          attributes: { serial: 'SN-1' },
          spec: { firmware: '1.2.0' },
        });
        expect(created).toEqual({
          ok: true,
          value: {
            id: 'pump-1',
            kind: 'generic',
            name: 'Pump 1',
            tags: ['hall-a', 'pumps'],
            attributes: { serial: 'SN-1' },
            spec: { firmware: '1.2.0' },
            status: {},
            createdAt: T,
            updatedAt: T,
          },
        });
        clock = T + 1000;
        const updated = await store.upsertDevice({
          id: 'pump-1',
          kind: 'generic',
          name: 'Pump One',
          spec: { firmware: '1.3.0' },
        });
        expect(updated).toMatchObject({
          ok: true,
          value: {
            name: 'Pump One',
            tags: ['hall-a', 'pumps'],
            attributes: { serial: 'SN-1' },
            spec: { firmware: '1.3.0' },
            createdAt: T,
            updatedAt: T + 1000,
          },
        });
        expect(await store.getDevice('pump-1')).toEqual(updated);
      });

      it('lists devices by id; reports notFound for a missing one', async () => {
        await store.upsertDevice({ id: 'b', kind: 'generic', name: 'B' });
        await store.upsertDevice({ id: 'a', kind: 'sensor', name: 'A' });
        const all = await store.listDevices();
        expect(all.map((r) => (r.ok ? r.value.id : r.id))).toEqual(['a', 'b']);
        const missing = await store.getDevice('nope');
        expect(missing).toEqual({ ok: false, error: { code: 'notFound', message: "no device 'nope'" } });
      });

      it('keeps reported status apart from spec', async () => {
        await store.upsertDevice({ id: 'd1', kind: 'generic', name: 'D1', spec: { firmware: '2.0.0' } });
        clock = T + 5;
        expect(await store.setDeviceStatus('d1', { firmware: '1.9.0', online: true })).toEqual({
          ok: true,
          value: undefined,
        });
        const device = await store.getDevice('d1');
        expect(device.ok && device.value).toMatchObject({
          spec: { firmware: '2.0.0' },
          status: { firmware: '1.9.0', online: true },
          updatedAt: T + 5,
        });
        expect(await store.setDeviceStatus('ghost', {})).toMatchObject({
          ok: false,
          error: { code: 'notFound' },
        });
      });

      it('deletes a device with its snapshot, and says notFound the second time', async () => {
        await store.upsertDevice({ id: 'd1', kind: 'generic', name: 'D1' });
        await store.saveSnapshot({
          deviceId: 'd1',
          kind: 'generic',
          snapshot: { value: 'on' },
          deadlines: [],
          version: 1,
        });
        expect(await store.deleteDevice('d1')).toEqual({ ok: true, value: undefined });
        expect(await store.loadSnapshot('d1')).toBeUndefined();
        expect(await store.deleteDevice('d1')).toMatchObject({ ok: false, error: { code: 'notFound' } });
      });

      it('refuses misuse with invalidArgument naming the field', async () => {
        await expect(store.upsertDevice({ id: '', kind: 'generic', name: 'x' })).rejects.toMatchObject({
          code: 'invalidArgument',
          field: 'device.id',
        });
        await expect(
          store.upsertDevice({ id: 'x', kind: 'generic', name: 'x', tags: ['ok', 3 as unknown as string] }),
        ).rejects.toMatchObject({ code: 'invalidArgument', field: 'device.tags[1]' });
        const cyclic: Record<string, unknown> = {};
        cyclic.self = cyclic;
        await expect(
          store.upsertDevice({ id: 'x', kind: 'generic', name: 'x', spec: cyclic as never }),
        ).rejects.toMatchObject({ code: 'invalidArgument', field: 'device.spec' });
      });
    });

    describe('snapshots', () => {
      const deadlines = [
        { label: 'heartbeat', wallDeadlineMs: T + 30_000, delayMs: 30_000 },
        { label: 'connect', wallDeadlineMs: T + 5_000, delayMs: 10_000 },
      ];

      it('saves one row per device with the absolute deadlines, and the latest wins', async () => {
        await store.saveSnapshot({
          deviceId: 'd1',
          kind: 'generic',
          snapshot: { value: 'connecting' },
          deadlines,
          version: 3,
        });
        clock = T + 10;
        await store.saveSnapshot({
          deviceId: 'd1',
          kind: 'generic',
          snapshot: { value: 'connected', context: { n: 1 } },
          deadlines: deadlines.slice(0, 1),
          version: 3,
        });
        await store.saveSnapshot({
          deviceId: 'd0',
          kind: 'sensor',
          snapshot: { value: 'idle' },
          deadlines: [],
          version: 1,
        });
        const loaded = await store.loadSnapshots({ knownKinds: ['generic', 'sensor'] });
        expect(loaded).toEqual([
          {
            ok: true,
            deviceId: 'd0',
            value: {
              deviceId: 'd0',
              kind: 'sensor',
              snapshot: { value: 'idle' },
              deadlines: [],
              version: 1,
              updatedAt: T + 10,
            },
          },
          {
            ok: true,
            deviceId: 'd1',
            value: {
              deviceId: 'd1',
              kind: 'generic',
              snapshot: { value: 'connected', context: { n: 1 } },
              deadlines: deadlines.slice(0, 1),
              version: 3,
              updatedAt: T + 10,
            },
          },
        ]);
        expect(await store.loadSnapshot('d0', { knownKinds: ['sensor'] })).toEqual(loaded[0]);
        expect(await store.loadSnapshot('nobody')).toBeUndefined();
      });

      it('refuses malformed deadlines when saving (misuse), naming the field', async () => {
        await expect(
          store.saveSnapshot({
            deviceId: 'd1',
            kind: 'generic',
            snapshot: {},
            deadlines: [{ label: 'x', wallDeadlineMs: Number.NaN, delayMs: 1 }],
            version: 1,
          }),
        ).rejects.toMatchObject({ code: 'invalidArgument', field: 'snapshot.deadlines' });
      });
    });

    describe('telemetry', () => {
      it('is acknowledged only after the commit that holds it', async () => {
        await store.close();
        store = await open({ telemetryFlushMs: 60_000, telemetryBatchMax: 10 });
        let settled = false;
        const pending = store.appendTelemetry([point('temp', T, 1), point('temp', T + 1, 2)]).then((r) => {
          settled = true;
          return r;
        });
        await sleep(50);
        expect(settled).toBe(false);
        expect(await engine.all('SELECT * FROM telemetry')).toEqual([]);
        // Filling the batch flushes it; both callers hear back after the one commit.
        const rest = store.appendTelemetry(Array.from({ length: 8 }, (_, i) => point('temp', T + 2 + i, i)));
        expect(await pending).toEqual({ ok: true, value: { written: 2, rejected: 0, duplicates: 0 } });
        expect(await engine.all('SELECT count(*) AS n FROM telemetry')).toEqual([{ n: 10 }]);
        expect(await rest).toEqual({ ok: true, value: { written: 8, rejected: 0, duplicates: 0 } });
      });

      it('flushes after telemetryFlushMs when the batch does not fill', async () => {
        await store.close();
        store = await open({ telemetryFlushMs: 20 });
        expect(await store.appendTelemetry([point('temp', T, 1)])).toEqual({
          ok: true,
          value: { written: 1, rejected: 0, duplicates: 0 },
        });
      });

      it('flushes at once when a batch is full', async () => {
        await store.close();
        store = await open({ telemetryFlushMs: 60_000, telemetryBatchMax: 10 });
        const points = Array.from({ length: 10 }, (_, i) => point('temp', T + i, i));
        expect(await store.appendTelemetry(points)).toEqual({
          ok: true,
          value: { written: 10, rejected: 0, duplicates: 0 },
        });
      });

      it('stores the device timestamp and the receive time separately', async () => {
        await store.appendTelemetry([
          { deviceId: 'd1', metric: 'temp', deviceTs: 1_000, receivedAt: T, value: 1.5 },
          { deviceId: 'd1', metric: 'temp', deviceTs: null, receivedAt: T + 1, value: -2 },
        ]);
        const rows = await engine.all(
          'SELECT received_at, device_ts, value FROM telemetry ORDER BY received_at',
        );
        expect(rows).toEqual([
          { received_at: T, device_ts: 1_000, value: 1.5 },
          { received_at: T + 1, device_ts: null, value: -2 },
        ]);
      });

      it('batches many callers into few statements, each caller told what it wrote', async () => {
        const calls = Array.from({ length: 40 }, (_, c) =>
          store.appendTelemetry(Array.from({ length: 25 }, (_, i) => point(`m${c % 4}`, T + c * 25 + i, c))),
        );
        const results = await Promise.all(calls);
        expect(results.every((r) => r.ok && r.value.written === 25)).toBe(true);
        expect(await engine.all('SELECT count(*) AS n FROM telemetry')).toEqual([{ n: 1000 }]);
        expect(await store.listMetrics('d1')).toEqual(['m0', 'm1', 'm2', 'm3']);
      });

      it('downsamples a range into min/max/avg buckets, [from, to), leaving empty buckets out', async () => {
        // 0…59 s, one point a second, value = second; plus points outside the range.
        const points = Array.from({ length: 60 }, (_, s) => point('temp', T + s * 1000, s));
        points.push(point('temp', T - 1, 1000), point('temp', T + 60_000, 1000), point('other', T, 1000));
        points.push(point('temp', T + 5_000, 1000, 'd2'));
        await store.appendTelemetry(points);
        const buckets = await store.queryTelemetry('d1', 'temp', T, T + 60_000, 6);
        expect(buckets).toEqual(
          Array.from({ length: 6 }, (_, b) => ({
            start: T + b * 10_000,
            min: b * 10,
            max: b * 10 + 9,
            avg: b * 10 + 4.5,
            count: 10,
          })),
        );
        const sparse = await store.queryTelemetry('d1', 'temp', T, T + 120_000, 4);
        // The point at T + 60 s, outside the first query, is inside this one.
        expect(sparse.map((b) => [b.start, b.count])).toEqual([
          [T, 30],
          [T + 30_000, 30],
          [T + 60_000, 1],
        ]);
        expect(await store.queryTelemetry('d1', 'nothing', T, T + 1000, 10)).toEqual([]);
        expect(await store.queryTelemetry('d1', 'temp', T + 10, T, 10)).toEqual([]);
      });

      it('puts a point on a bucket edge into the bucket that starts there, for uneven widths', async () => {
        // span 10 into 3 buckets: edges at 0, 3.33…, 6.66…: t=3 → bucket 0, t=4 → 1, t=7 → 2.
        await store.appendTelemetry([
          point('x', T + 3, 1),
          point('x', T + 4, 2),
          point('x', T + 7, 3),
          point('x', T + 9, 4),
        ]);
        const buckets = await store.queryTelemetry('d1', 'x', T, T + 10, 3);
        expect(buckets.map((b) => [b.start, b.count])).toEqual([
          [T, 1],
          [T + 4, 1],
          [T + 7, 2],
        ]);
      });

      it('refuses invalid points one by one and writes the rest, warning once', async () => {
        const logger = recordingLogger();
        await store.close();
        store = await open({ logger });
        const result = await store.appendTelemetry([
          point('temp', T, 1),
          { ...point('temp', T, 1), value: Number.NaN },
          { ...point('temp', T, 1), deviceId: '' },
          { ...point('temp', T, 1), deviceTs: Number.POSITIVE_INFINITY },
          point('temp', T + 1, 2),
        ]);
        expect(result).toEqual({ ok: true, value: { written: 2, rejected: 3, duplicates: 0 } });
        const warnings = logger.lines.filter((l) => l.level === 'warn');
        expect(warnings).toHaveLength(1);
        expect(warnings[0]!.fields).toMatchObject({
          refused: 3,
          example: 'points[1]: value NaN is not a finite number',
        });
        expect(await store.appendTelemetry([{ ...point('t', T, 1), receivedAt: Number.NaN }])).toEqual({
          ok: true,
          value: { written: 0, rejected: 1, duplicates: 0 },
        });
      });

      it('answers overloaded instead of buffering without bound', async () => {
        await store.close();
        store = await open({ telemetryFlushMs: 60_000, telemetryBatchMax: 100, telemetryBufferMax: 150 });
        const first = store.appendTelemetry(Array.from({ length: 90 }, (_, i) => point('t', T + i, i)));
        const second = await store.appendTelemetry(
          Array.from({ length: 90 }, (_, i) => point('t', T + i, i)),
        );
        expect(second).toMatchObject({ ok: false, error: { code: 'overloaded' } });
        await store.close(); // flushes the accepted points
        expect(await first).toEqual({ ok: true, value: { written: 90, rejected: 0, duplicates: 0 } });
        store = await open();
      });

      it('prunes by age (receive time) and keeps the rest queryable', async () => {
        await store.appendTelemetry([
          point('temp', T - 100_000, 1),
          point('temp', T - 50_000, 2),
          point('hum', T - 70_000, 3, 'd2'),
          point('temp', T - 10_000, 4),
          point('temp', T, 5),
        ]);
        expect(await store.pruneTelemetry(60_000)).toEqual({ deleted: 2 });
        const left = await store.queryTelemetry('d1', 'temp', T - 200_000, T + 1, 1);
        expect(left).toEqual([{ start: T - 200_000, min: 2, max: 5, avg: 11 / 3, count: 3 }]);
        expect(await store.pruneTelemetry(60_000)).toEqual({ deleted: 0 });
      });

      it('prunes large volumes in chunks', async () => {
        const old = Array.from({ length: 25_000 }, (_, i) => point(`m${i % 3}`, T - 1_000_000 + i, i));
        await store.appendTelemetry(old);
        await store.appendTelemetry([point('m0', T, 1)]);
        expect(await store.pruneTelemetry(1000)).toEqual({ deleted: 25_000 });
        expect(await engine.all('SELECT count(*) AS n FROM telemetry')).toEqual([{ n: 1 }]);
      });

      it('commits buffered telemetry on close', async () => {
        await store.close();
        store = await open({ telemetryFlushMs: 60_000 });
        const pending = store.appendTelemetry([point('temp', T, 1)]);
        await store.close();
        expect(await pending).toMatchObject({ ok: true });
        store = await open();
        expect(await store.queryTelemetry('d1', 'temp', T, T + 1, 1)).toHaveLength(1);
      });

      it('refuses a bad query with invalidArgument', async () => {
        await expect(store.queryTelemetry('d1', 'temp', T, T + 1, 0)).rejects.toMatchObject({
          code: 'invalidArgument',
          field: 'buckets',
        });
        await expect(store.queryTelemetry('d1', 'temp', Number.NaN, T, 10)).rejects.toMatchObject({
          field: 'fromMs',
        });
      });
    });

    describe('event log', () => {
      it('appends with consecutive seqs, each caller getting its own, in order', async () => {
        const calls = Array.from({ length: 20 }, (_, c) =>
          store.appendEvents(Array.from({ length: 3 }, (_, i) => ({ at: T + c, kind: 'k', data: { c, i } }))),
        );
        const seqs = await Promise.all(calls);
        expect(seqs.flat()).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
        const page = await store.queryEvents({ limit: 100 });
        for (const item of page.items) {
          expect(item.ok).toBe(true);
          if (!item.ok) continue;
          const { c, i } = item.value.data as { c: number; i: number };
          expect(seqs[c]![i]).toBe(item.value.seq);
        }
      });

      it('filters by device, kind and time and pages both ways', async () => {
        const events = Array.from({ length: 30 }, (_, i) => ({
          at: T + i * 1000,
          ...(i % 3 === 0 ? {} : { deviceId: `d${i % 3}` }),
          kind: i % 2 === 0 ? 'state.transition' : 'device.rx',
          data: { i },
        }));
        await store.appendEvents(events);
        const of = (page: Awaited<ReturnType<typeof store.queryEvents>>) =>
          page.items.map((item) => (item.ok ? (item.value.data as { i: number }).i : -1));

        expect(of(await store.queryEvents({ deviceId: 'd1', limit: 100 }))).toEqual([
          1, 4, 7, 10, 13, 16, 19, 22, 25, 28,
        ]);
        expect(of(await store.queryEvents({ kind: 'device.rx', deviceId: 'd2', limit: 100 }))).toEqual([
          5, 11, 17, 23, 29,
        ]);
        expect(of(await store.queryEvents({ fromMs: T + 10_000, toMs: T + 13_000, limit: 100 }))).toEqual([
          10, 11, 12,
        ]);

        const first = await store.queryEvents({ kind: 'state.transition', limit: 6 });
        expect(of(first)).toEqual([0, 2, 4, 6, 8, 10]);
        const second = await store.queryEvents({
          kind: 'state.transition',
          limit: 6,
          afterSeq: first.nextCursor!,
        });
        expect(of(second)).toEqual([12, 14, 16, 18, 20, 22]);
        const last = await store.queryEvents({
          kind: 'state.transition',
          limit: 6,
          afterSeq: second.nextCursor!,
        });
        expect(of(last)).toEqual([24, 26, 28]);
        expect(last.nextCursor).toBeUndefined();

        const newest = await store.queryEvents({ order: 'desc', limit: 4 });
        expect(of(newest)).toEqual([29, 28, 27, 26]);
        expect(
          of(await store.queryEvents({ order: 'desc', limit: 4, beforeSeq: newest.nextCursor! })),
        ).toEqual([25, 24, 23, 22]);
      });

      it('keeps the device id off system events and reads everything back as written', async () => {
        const [a, b] = await store.appendEvents(
          [
            { at: T, kind: 'supervisor.gaveUp', data: { childId: 'x', maxRestarts: 3 } },
            { at: T + 1, deviceId: 'd1', kind: 'device.tx', data: 'raw "quoted" \u2603 text' },
          ],
          { durability: 'full' },
        );
        const page = await store.queryEvents({ limit: 10 });
        expect(page.items).toEqual([
          {
            ok: true,
            value: { seq: a, at: T, kind: 'supervisor.gaveUp', data: { childId: 'x', maxRestarts: 3 } },
          },
          {
            ok: true,
            value: { seq: b, at: T + 1, deviceId: 'd1', kind: 'device.tx', data: 'raw "quoted" \u2603 text' },
          },
        ]);
      });

      it('refuses misuse with invalidArgument', async () => {
        await expect(store.appendEvents([{ at: T, kind: '', data: null }])).rejects.toMatchObject({
          code: 'invalidArgument',
          field: 'events[0].kind',
        });
        await expect(store.queryEvents({ limit: 0 })).rejects.toMatchObject({ field: 'query.limit' });
      });
    });

    describe('command audit log', () => {
      const command = (n: number, deviceId = 'd1') => ({
        commandId: `c${n}`,
        deviceId,
        action: 'setConfig',
        args: { interval: n },
        actor: 'ana',
        requestedAt: T + n,
      });

      it('records a command once, then its outcome', async () => {
        expect(await store.recordCommand(command(1))).toEqual({ ok: true, value: undefined });
        expect(await store.recordCommand(command(1))).toMatchObject({
          ok: false,
          error: { code: 'alreadyRecorded' },
        });
        expect(await store.updateCommand('c1', { status: 'sent' })).toEqual({ ok: true, value: undefined });
        expect(
          await store.updateCommand('c1', {
            status: 'failed',
            error: { code: 'timeout', message: 'no reply in 5000 ms' },
            completedAt: T + 5001,
          }),
        ).toEqual({ ok: true, value: undefined });
        expect(await store.updateCommand('c9', { status: 'sent' })).toMatchObject({
          ok: false,
          error: { code: 'notFound' },
        });
        const page = await store.queryCommands({ limit: 10 });
        expect(page.items).toEqual([
          {
            ok: true,
            value: {
              seq: 1,
              commandId: 'c1',
              deviceId: 'd1',
              action: 'setConfig',
              args: { interval: 1 },
              actor: 'ana',
              status: 'failed',
              result: null,
              error: { code: 'timeout', message: 'no reply in 5000 ms' },
              requestedAt: T + 1,
              completedAt: T + 5001,
              expiresAt: null,
            },
          },
        ]);
      });

      it('keeps when a command expires', async () => {
        await store.recordCommand({ ...command(2), expiresAt: T + 60_000 });
        const page = await store.queryCommands({ limit: 1 });
        expect(page.items[0]).toMatchObject({ ok: true, value: { commandId: 'c2', expiresAt: T + 60_000 } });
        await expect(store.recordCommand({ ...command(3), expiresAt: Number.NaN })).rejects.toThrow(
          /expiresAt/,
        );
      });

      it('pages newest first, filtered by device and status', async () => {
        for (let n = 1; n <= 7; n++) await store.recordCommand(command(n, n % 2 === 0 ? 'd2' : 'd1'));
        await store.updateCommand('c3', {
          status: 'succeeded',
          result: { applied: true },
          completedAt: T + 10,
        });
        const ids = (page: Awaited<ReturnType<typeof store.queryCommands>>) =>
          page.items.map((item) => (item.ok ? item.value.commandId : '?'));
        const first = await store.queryCommands({ deviceId: 'd1', limit: 2 });
        expect(ids(first)).toEqual(['c7', 'c5']);
        const rest = await store.queryCommands({ deviceId: 'd1', limit: 2, beforeSeq: first.nextCursor! });
        expect(ids(rest)).toEqual(['c3', 'c1']);
        expect(ids(await store.queryCommands({ status: 'succeeded', limit: 10 }))).toEqual(['c3']);
        expect(ids(await store.queryCommands({ status: 'pending', fromMs: T + 4, limit: 10 }))).toEqual([
          'c7',
          'c6',
          'c5',
          'c4',
        ]);
      });

      it('refuses an unknown status (misuse)', async () => {
        await expect(store.recordCommand({ ...command(1), status: 'done' as never })).rejects.toMatchObject({
          code: 'invalidArgument',
          field: 'command.status',
        });
      });
    });

    it('keeps everything across a close and reopen', async () => {
      await store.upsertDevice({ id: 'd1', kind: 'generic', name: 'D1' });
      await store.saveSnapshot({
        deviceId: 'd1',
        kind: 'generic',
        snapshot: { value: 'on' },
        deadlines: [],
        version: 1,
      });
      await store.appendTelemetry([point('temp', T, 1)]);
      await store.appendEvents([{ at: T, kind: 'k', data: 1 }]);
      await store.recordCommand({
        commandId: 'c',
        deviceId: 'd1',
        action: 'a',
        args: null,
        actor: 'ana',
        requestedAt: T,
      });
      await store.close();
      store = await open();
      expect((await store.listDevices()).length).toBe(1);
      expect((await store.loadSnapshots()).length).toBe(1);
      expect((await store.queryTelemetry('d1', 'temp', T, T + 1, 1))[0]?.count).toBe(1);
      expect((await store.queryEvents({ limit: 10 })).items.length).toBe(1);
      expect((await store.queryCommands({ limit: 10 })).items.length).toBe(1);
      // New seqs continue after the old ones.
      expect(await store.appendEvents([{ at: T, kind: 'k', data: 2 }])).toEqual([2]);
    });
  });
}
