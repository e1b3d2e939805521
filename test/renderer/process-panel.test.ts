/**
 * The tree's process panel on the real stack (a real host with the demo's simulated devices over
 * MQTT, the built renderer, Debian's Chromium), as Erlang's observer shows a process: select a
 * device machine and see its pid, state, mailbox, timers, memory and an empty timeline; restart
 * it from the panel (confirmed) and see the banner say what its supervisor did and the timeline
 * grow; kill it and see the crash and the restart; terminate it, still described while stopped,
 * and start it again. Screenshots: .test-results/screenshots/process-panel-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/host/app.js';
import { waitFor } from '../transports/helpers.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

const ids = ['demo-m001', 'demo-m002'];
const MACHINE = 'fleetvisor/devices/demo-m001/machine';

describe.skipIf(!existsSync(CHROMIUM))('the process panel on the real stack', () => {
  let app: App;
  let page: Page;
  let pageErrors: string[] = [];
  let host: RealHost | undefined;

  const row = (key: string) => page.locator(`[data-testid="tree-node"][data-key="${key}"]`);
  const panel = () => page.getByTestId('process-panel');
  const entries = () => panel().getByTestId('timeline-entry');
  const shownPid = async () =>
    Number(((await panel().getByTestId('process-pid').textContent()) ?? '').slice(1, -1));

  beforeAll(async () => {
    host = await startRealHost({
      name: 'process-panel',
      app: { broker: { port: 0 }, demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 500 }, conventions: [] },
      ready: (app) =>
        waitFor(
          () => ids.every((id) => app.fleet.device(id)?.state === 'connected'),
          15_000,
          'demo connected',
        ),
    });
    ({ app, page, pageErrors } = host);
    await page.getByTestId('nav-tree').click();
  }, 120_000);

  afterAll(() => host?.close(), 30_000);

  it('shows a device machine as the observer does: pid, state, mailbox, timers, memory, no exit yet', async () => {
    const device = row('fleetvisor/devices/demo-m001');
    await device.waitFor({ timeout: 15_000 });
    if ((await device.getAttribute('aria-expanded')) === 'false')
      await device.locator('button.caret').click();
    await row(MACHINE).click();
    const p = panel();
    await expect.poll(() => p.getByTestId('process-mailbox').count(), { timeout: 10_000 }).toBe(1);
    const pid = machineOf(app, 'demo-m001');
    expect(await p.getByTestId('process-pid').textContent()).toBe(`<${pid}>`);
    expect(await p.getByTestId('node-state').getAttribute('data-state')).toBe('connected');
    expect(await p.getByTestId('process-mailbox').textContent()).toMatch(/^0/);
    // The liveness deadline of the connected state, with the event it sends and a countdown.
    expect(Number(await p.getByTestId('process-timers').textContent())).toBeGreaterThanOrEqual(1);
    expect(await p.getByTestId('timer-entry').first().textContent()).toMatch(
      /named:liveness\s*in \d.*sends LIVENESS_TIMEOUT/,
    );
    expect(await p.getByTestId('process-memory').textContent()).toMatch(/\d+(\.\d)? (B|KiB).*snapshot/);
    expect(await p.getByTestId('timeline-empty').textContent()).toContain('No exit since');
  }, 40_000);

  it('restarts it from the panel: confirmed, the banner says what the supervisor did, the timeline grows', async () => {
    const before = machineOf(app, 'demo-m001');
    await panel().getByTestId('restart-button').click();
    const dialog = page.locator('dialog');
    expect(await dialog.textContent()).toContain('terminate_child then restart_child');
    await page.getByTestId('confirm-ok').click();
    const notice = page.getByTestId('tree-notice');
    await expect
      .poll(() => notice.textContent(), { timeout: 10_000 })
      .toMatch(/Restarted demo-m001 <\d+>: .* as <\d+>/);
    const after = machineOf(app, 'demo-m001');
    expect(after).not.toBe(before);
    await expect.poll(() => shownPid(), { timeout: 10_000 }).toBe(after);
    await expect.poll(() => entries().count(), { timeout: 10_000 }).toBe(1);
    const entry = entries().first();
    expect(await entry.getAttribute('data-kind')).toBe('stop');
    expect(await entry.textContent()).toMatch(
      new RegExp(`<${before}> shutdown.*started again as <${after}>`),
    );
  }, 40_000);

  it('a kill from the panel: its supervisor restarted it, and the timeline says killed and restarted', async () => {
    const before = machineOf(app, 'demo-m001');
    await panel().getByTestId('kill-button').click();
    await page.getByTestId('confirm-ok').click();
    await expect
      .poll(() => page.getByTestId('tree-notice').textContent(), { timeout: 10_000 })
      .toMatch(/restarted it as <\d+>/);
    await expect.poll(() => entries().count(), { timeout: 10_000 }).toBe(2);
    const newest = entries().first();
    expect(await newest.getAttribute('data-kind')).toBe('crash');
    expect(await newest.textContent()).toMatch(
      new RegExp(`<${before}> killed.*restarted as <\\d+> in .*1/3 in the window`),
    );
    expect(await panel().getByTestId('process-restarts').textContent()).toBe('1');
    expect(await panel().getByTestId('node-reason').textContent()).toMatch(/killed at \d\d:\d\d/);
    await page.screenshot({ path: join(SHOTS, 'process-panel-restarted.png') });
  }, 40_000);

  it('terminated from the panel it stays described, stopped, with its timeline; Restart child starts it', async () => {
    const before = machineOf(app, 'demo-m001');
    await panel().getByTestId('terminate-button').click();
    expect(await page.locator('dialog').textContent()).toContain('does not restart it');
    await page.getByTestId('confirm-ok').click();
    await expect
      .poll(() => page.getByTestId('tree-notice').textContent(), { timeout: 10_000 })
      .toContain('Terminated');
    await expect.poll(() => row(MACHINE).getAttribute('data-status'), { timeout: 10_000 }).toBe('stopped');
    await expect.poll(() => entries().count(), { timeout: 10_000 }).toBe(3);
    expect(await entries().first().textContent()).toMatch(
      new RegExp(`<${before}> shutdown.*not started again`),
    );
    expect(await panel().getByTestId('process-pid').textContent()).toBe('—');
    expect(await panel().getByTestId('process-mailbox').textContent()).toMatch(/^—.*no running process/);
    await page.screenshot({ path: join(SHOTS, 'process-panel-terminated.png') });
    await panel().getByTestId('restart-child-button').click();
    await expect.poll(() => row(MACHINE).getAttribute('data-status'), { timeout: 10_000 }).toBe('running');
    await expect
      .poll(() => entries().first().textContent(), { timeout: 10_000 })
      .toMatch(/started again as <\d+>/);
    expect(pageErrors).toEqual([]);
  }, 40_000);
});

/** The pid of a device's machine, from the app itself. */
function machineOf(app: App, id: string): number {
  const sup = app.fleet.supervisor.whichChildren().find((c) => c.id === id)?.process as
    | { whichChildren(): { id: string; pid: number | undefined }[] }
    | undefined;
  return sup!.whichChildren().find((c) => c.id === 'machine')!.pid!;
}
