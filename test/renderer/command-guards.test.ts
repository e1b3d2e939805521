/**
 * A device's open circuit breaker, seen in the fleet table and the device detail, on a real host
 * in demo mode (embedded broker on a free port, SQLite, simulated MQTT devices), the built renderer
 * served by the host's own server, and Debian's Chromium. One demo device answers late (its
 * replies 45 s after the command, past the protocol's 30 s reply time: it keeps its heartbeats, so
 * its link stays up): five pings time out and its breaker opens. Its fleet row carries the
 * "breaker open" mark (no other row does), the detail's "Command guards" shows it open with 5 of 5
 * failures and the next probe counting down, and a further ping over the API is refused
 * `circuitOpen` with `retryAt`. Screenshots go to /tmp/shots/command-guards-*.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActResult } from '../../src/host/contract.js';
import { CHROMIUM, type RealHost, startRealHost } from './real-host.js';

const SHOTS = '/tmp/shots';

describe.skipIf(!existsSync(CHROMIUM))(
  'an open circuit breaker in the fleet table and the device detail',
  () => {
    let page: Page;
    let pageErrors: string[] = [];
    let host: RealHost | undefined;

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      host = await startRealHost({
        name: 'command-guards',
        app: {
          broker: { port: 0 },
          demo: { mqtt: 2, serial: 0, telemetryIntervalMs: 1000 },
          conventions: [],
        },
      });
      ({ page, pageErrors } = host);
    }, 90_000);

    afterAll(() => host?.close(), 30_000);

    it('marks the row, shows the breaker with its countdown in the detail, and refuses the next command', async () => {
      const app = host!.app;
      const sims = app.sim!.mqtt;
      const [target, other] = sims.map((d) => d.id) as [string, string];
      const deadline = Date.now() + 20_000;
      while (![target, other].every((id) => app.fleet.device(id) && app.links.hub?.device(id)?.online)) {
        if (Date.now() > deadline) throw new Error('the demo devices never came online in the fleet');
        await new Promise((r) => setTimeout(r, 100));
      }
      const row = page.locator(`[data-testid="fleet-row"][data-device-id="${target}"]`);
      await row.waitFor({ timeout: 15_000 });
      expect(await page.getByTestId('fleet-breaker').count()).toBe(0);

      // Late answers: five pings, each timed out after the 30 s reply time.
      sims.find((d) => d.id === target)!.device.setFaults({ slowReplyMs: 45_000 });
      const act = async (ids: string[]) => {
        const r = await host!.api.call('act', { ids, action: 'ping', args: {} }, { actor: 'tester' });
        if (!r.ok) throw new Error(`act: ${r.error.code}`);
        return r.value as readonly ActResult[];
      };
      const sent = await act(Array(5).fill(target));
      expect(sent.every((r) => r.ok && r.commandStatus === 'sent')).toBe(true);
      await expect
        .poll(() => app.fleet.guards.breakerState(target), { timeout: 40_000, interval: 250 })
        .toBe('open');

      // The fleet row carries the mark; the other device's does not.
      const mark = row.getByTestId('fleet-breaker');
      await mark.waitFor({ timeout: 5_000 });
      expect(await mark.textContent()).toBe('breaker open');
      expect(await mark.getAttribute('title')).toContain('circuitOpen');
      expect(await page.getByTestId('fleet-breaker').count()).toBe(1);
      await page.screenshot({ path: join(SHOTS, 'command-guards-table.png') });

      // A further command is refused at once, with the next probe time.
      const refused = await act([target]);
      const nextProbeAt = app.fleet.guards.breaker(target).nextProbeAt!;
      expect(refused[0]).toMatchObject({
        ok: false,
        error: { code: 'circuitOpen', retryAt: nextProbeAt },
      });

      // The detail: open, 5 of 5, opened once, the next probe counting down.
      await row.click();
      const panel = page.getByTestId('device-breaker');
      await panel.waitFor({ timeout: 10_000 });
      expect(await panel.getAttribute('data-state')).toBe('open');
      expect(await panel.getByTestId('breaker-state').textContent()).toBe('breaker open');
      expect(await panel.getByTestId('breaker-failures').textContent()).toMatch(/^5 of 5 to open/);
      expect(await panel.getByTestId('breaker-opens').textContent()).toMatch(/^1 time /);
      const countdown = panel.getByTestId('breaker-next-probe');
      const first = await countdown.textContent();
      expect(first).toMatch(/next probe in \d+(\.\d+)? s/);
      await page.waitForTimeout(2_100);
      expect(await countdown.textContent()).not.toBe(first);
      await panel.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(SHOTS, 'command-guards-detail.png') });
      expect(pageErrors).toEqual([]);
    }, 90_000);
  },
);
