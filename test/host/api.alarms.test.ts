/**
 * Alarms over the host API on the real demo app (embedded broker, simulated MQTT devices, real
 * SQLite file): a telemetry threshold rule fires on the demo devices (they report temp ~20–25 °C),
 * acknowledged and shelved with the operator's name; rules validated, crashed rules shown.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostApiHandle } from '../../src/host/api.js';
import { createHostApi } from '../../src/host/api.js';
import type { App } from '../../src/host/app.js';
import { startApp } from '../../src/host/app.js';
import type { AlarmRuleView, AlarmView, Results } from '../../src/host/contract.js';
import { silentLogger } from '../../src/runtime/runtime.js';
import { waitFor } from '../transports/helpers.js';

let dir: string;
let app: App;
let api: HostApiHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fv-alarms-api-'));
  app = await startApp({
    dataDir: dir,
    logger: silentLogger,
    broker: { port: 0 },
    demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 200 },
  });
  api = createHostApi(app);
  await waitFor(() => app.fleet.device('demo-m001')?.state === 'connected', 10_000, 'demo connected');
});

afterAll(async () => {
  api?.close();
  await app?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function ok<T>(method: string, args: unknown, actor?: string): Promise<T> {
  const r = await api.call(method, args, actor ? { actor } : undefined);
  if (!r.ok) throw new Error(`${method} failed: ${r.error.code} ${r.error.message}`);
  return r.value as T;
}

describe('alarms API', () => {
  it('a threshold rule fires on the demo devices; ack and shelve keep who; filters by device and severity', async () => {
    const rule = await ok<AlarmRuleView>(
      'alarmRuleSet',
      {
        rule: {
          id: 'warm',
          type: 'threshold',
          metric: 'temp',
          op: 'above',
          value: 10,
          forMs: 500,
          severity: 'minor',
        },
      },
      'alice',
    );
    expect(rule).toMatchObject({
      status: 'running',
      updatedBy: 'alice',
      rule: { hysteresis: 0, enabled: true },
    });
    await waitFor(() => app.alarms.counts().active === 2, 10_000, 'an alarm on each demo device');
    const page = await ok<Results['alarms']>('alarms', { severity: 'minor' });
    expect(page.items.map((a) => a.deviceId).sort()).toEqual(['demo-m001', 'demo-m002']);
    expect(page.counts).toMatchObject({ active: 2, unacked: 2, bySeverity: { minor: 2 } });
    expect((await ok<Results['alarms']>('alarms', { severity: 'critical' })).items).toEqual([]);
    const a1 = page.items.find((a) => a.deviceId === 'demo-m001')!;
    expect(a1.message).toMatch(/^temp above 10 for 500 ms: \d/);

    expect(await ok<AlarmView>('alarmAck', { id: a1.id }, 'bob')).toMatchObject({ ackedBy: 'bob' });
    const a2 = page.items.find((a) => a.deviceId === 'demo-m002')!;
    expect(await ok<AlarmView>('alarmShelve', { id: a2.id, forMs: 60_000 }, 'carol')).toMatchObject({
      shelvedBy: 'carol',
    });
    const after = await ok<Results['alarms']>('alarms', { state: 'unacked' });
    expect(after.counts).toMatchObject({ active: 2, unacked: 0, shelved: 1 });
    expect(after.items.map((a) => a.id)).toEqual([a2.id]);

    expect(await api.call('alarmAck', { id: 99_999 })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
    expect(await api.call('alarmShelve', { id: a1.id, forMs: -1 })).toMatchObject({
      ok: false,
      error: { code: 'badRequest' },
    });

    // The device's event log has them too, with who.
    let kinds: string[] = [];
    for (let i = 0; i < 50 && !kinds.includes('alarm.acked'); i++) {
      const events = await ok<Results['events']>('events', { id: 'demo-m001' });
      kinds = events.items
        .filter((e) => e.kind.startsWith('alarm.'))
        .map((e) => `${e.kind} ${JSON.stringify(e.data)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(kinds).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^alarm\.raised .*"ruleId":"warm"/),
        expect.stringMatching(/^alarm\.acked .*"by":"bob"/),
      ]),
    );

    // Deleting the rule clears its alarms, by the operator.
    expect(await ok('alarmRuleDelete', { id: 'warm' }, 'alice')).toEqual({ deleted: 'warm' });
    const cleared = await ok<Results['alarms']>('alarms', { state: 'cleared' });
    expect(cleared.items.map((a) => a.clearedBy)).toEqual(['rule deleted by alice', 'rule deleted by alice']);
    expect(cleared.counts.active).toBe(0);
  });

  it('a bad rule is refused badRequest naming the field; rules are listed with their description', async () => {
    expect(
      await api.call('alarmRuleSet', {
        rule: { id: 'x', type: 'threshold', metric: 'temp', op: 'over', value: 1 },
      }),
    ).toMatchObject({ ok: false, error: { code: 'badRequest', message: expect.stringContaining('op:') } });
    expect(await api.call('alarmRuleSet', { rule: { id: 'x', type: 'circuit' } })).toMatchObject({
      ok: false,
      error: { code: 'badRequest' },
    });
    await ok('alarmRuleSet', { rule: { id: 'gone', type: 'offline', forMs: 30_000 } });
    expect(await ok<AlarmRuleView[]>('alarmRules', {})).toMatchObject([
      {
        rule: { id: 'gone', type: 'offline' },
        description: 'offline for 30 s',
        status: 'running',
        active: 0,
      },
    ]);
    expect(await api.call('alarmRuleDelete', { id: 'nope' })).toMatchObject({
      ok: false,
      error: { code: 'notFound' },
    });
  });
});
