/**
 * The machine inspector in the device detail, on a real host (embedded broker, SQLite, the built
 * renderer served by the host's own server) and Debian's Chromium: a device without a link is
 * opened; its machine's context and its last events show; the form offers only the events its
 * state accepts; CONNECT, then HELLO with a payload, sent from the form move the machine (the
 * header and the inspector follow) and land in the last events with their payloads; a payload
 * that is not an object is refused before it is sent; each send is audited with the operator's
 * name. Screenshots go to .test-results/screenshots/device-inspector-*.png.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventView } from '../../src/host/contract.js';
import { CHROMIUM, type RealHost, SHOTS, startRealHost } from './real-host.js';

describe.skipIf(!existsSync(CHROMIUM))('the machine inspector in the device detail', () => {
  let page: Page;
  let host: RealHost | undefined;

  beforeAll(async () => {
    host = await startRealHost({
      name: 'device-inspector',
      app: { broker: { port: 0 }, demo: false, conventions: [] },
    });
    page = host.page;
    const r = await host.api.call(
      'deviceAdd',
      {
        id: 'bench-7',
        kind: 'fleetvisor.generic',
        name: 'Test bench',
        attributes: { connectTimeoutMs: 600_000 },
      },
      { actor: 'tester' },
    );
    if (!r.ok) throw new Error(`deviceAdd: ${r.error.message}`);
  }, 120_000);

  afterAll(() => host?.close(), 30_000);

  it('shows the context and last events, and sends accepted events from the form', async () => {
    const app = host!.app;
    const row = page.getByTestId('fleet-row').filter({ hasText: 'bench-7' });
    await row.waitFor({ timeout: 15_000 });
    await row.click();

    const inspector = page.getByTestId('device-inspector');
    await inspector.waitFor({ timeout: 10_000 });
    await expect.poll(() => inspector.getAttribute('data-state')).toBe('disconnected');
    const context = page.getByTestId('inspector-context-json');
    const contextJson = async () =>
      JSON.parse((await context.textContent()) ?? 'null') as Record<string, unknown>;
    expect(await contextJson()).toEqual({
      connectTimeoutMs: 600_000,
      attempts: 0,
      firmware: null,
      lastError: null,
    });
    // Its start is the first event the host kept of it.
    const firstRow = page.getByTestId('inspector-event-row').first();
    expect(await firstRow.getAttribute('data-event')).toBe('xstate.init');
    expect(await firstRow.getByTestId('inspector-transition').textContent()).toBe('start → disconnected');

    // Only what `disconnected` accepts is offered.
    const select = page.getByTestId('inspector-event');
    expect(
      await select.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)),
    ).toEqual(['', 'CONNECT']);
    await page.screenshot({ path: join(SHOTS, 'device-inspector-open.png'), fullPage: true });

    await select.selectOption('CONNECT');
    await page.getByTestId('inspector-submit').click();
    await expect
      .poll(() => page.getByTestId('inspector-outcome').textContent())
      .toBe('CONNECT: disconnected → connecting');
    await expect.poll(() => inspector.getAttribute('data-state')).toBe('connecting');
    expect(app.fleet.device('bench-7')!.state).toBe('connecting');
    await expect.poll(async () => (await contextJson()).attempts).toBe(1);

    // connecting accepts more; a payload that is not an object is refused before it is sent.
    await expect
      .poll(() => select.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value)))
      .toEqual(['', 'DISCONNECT', 'HELLO', 'LINK_DOWN']);
    await select.selectOption('HELLO');
    const payload = page.getByTestId('inspector-payload');
    await payload.fill('[1, 2]');
    expect(await page.getByTestId('inspector-submit').isDisabled()).toBe(true);
    expect(await page.getByTestId('inspector-send').textContent()).toContain(
      'the payload must be a JSON object',
    );

    await payload.fill('{"firmware": "3.1.4"}');
    await page.getByTestId('inspector-submit').click();
    await expect
      .poll(() => page.getByTestId('inspector-outcome').textContent())
      .toBe('HELLO: connecting → connected');
    await expect.poll(() => inspector.getAttribute('data-state')).toBe('connected');
    await expect.poll(async () => (await contextJson()).firmware).toBe('3.1.4');
    // The header follows the machine too.
    await expect.poll(() => page.locator('.detail-header').textContent()).toContain('connected');

    const newest = page.getByTestId('inspector-event-row').first();
    expect(await newest.getAttribute('data-event')).toBe('HELLO');
    expect(await newest.getByTestId('inspector-transition').textContent()).toBe('connecting → connected');
    expect(await newest.textContent()).toContain('{"firmware":"3.1.4"}');
    expect(await page.getByTestId('inspector-event-row').nth(1).getAttribute('data-event')).toBe('CONNECT');
    await page.screenshot({ path: join(SHOTS, 'device-inspector-sent.png'), fullPage: true });
    await inspector.screenshot({ path: join(SHOTS, 'device-inspector-panel.png') });

    await app.fleet.flush();
    const audits = await host!.api.call('events', { id: 'bench-7', kind: 'device.eventSent' });
    if (!audits.ok) throw new Error(audits.error.message);
    const items = (audits.value as { items: readonly EventView[] }).items.map((e) => e.data).reverse();
    expect(items).toEqual([
      { event: 'CONNECT', payload: {}, actor: 'operator', from: 'disconnected', to: 'connecting' },
      {
        event: 'HELLO',
        payload: { firmware: '3.1.4' },
        actor: 'operator',
        from: 'connecting',
        to: 'connected',
      },
    ]);
    expect(host!.pageErrors).toEqual([]);
  });
});
