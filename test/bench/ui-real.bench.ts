/**
 * The fleet view on the real stack, in a real browser: the headless app (`fleetvisor serve
 * --no-demo`, embedded broker, SQLite in a temp data folder), the device simulator in its own
 * process (`npm run sim`'s CLI, MQTT, one connection per device) and Debian's Chromium
 * (playwright-core), all on this machine. Size: `BENCH_DEVICES` (default 10,000; `BENCH_QUICK=1`:
 * 2,000). Telemetry every `BENCH_INTERVAL_MS` per device (default: 1 s up to 2,000 devices, then
 * slower so the fleet sends ≈ 2,000 messages a second in all: what host and simulator manage on
 * two cores besides the browser).
 *
 * The devices join the fleet the cheapest real way: one `devicesImport` call (what `fleetvisor
 * devices import FILE` sends; ≈ 6 ms a device, where "Adopt all" in the Discovered view takes one
 * `adopt` call per device, ≈ 56 ms each: 2,000 in 112 s) with names and two tags each, before the
 * simulator starts; each connects with the kind's first-contact secret and says hello. Once the
 * host counts them all online, the fleet view is measured:
 *
 *   1. Sort: a click on a column header (a real mouse click, CDP input) until the table shows the
 *      new order, painted: from the click event's timestamp to the first frame whose rAF sees the
 *      header's new `aria-sort` (the rows render in the same commit), plus that frame's paint (a
 *      message posted from that rAF runs after it). Every column, ascending then descending, twice.
 *   2. Filter: one key at a time typed into the filter box, each from its keydown to the painted
 *      frame whose count ("N of M devices") and box show the text typed so far; the expected count
 *      comes from the imported names and tags. Then the box cleared (Backspace on the selection).
 *   3. Frames: requestAnimationFrame deltas while the live diffs flow and the table scrolls 120 px
 *      a frame, against a static page of as many plain rows measured the same way in the same run
 *      (with host and simulator running: the machine's own baseline under the same load).
 *
 * After the measured windows (never during one), `#` lines say where the time goes: Long Animation
 * Frames during the sorts and filters, main-thread split (CDP Performance.getMetrics), and JS self
 * time by source file from CPU profiles of a repeat of the sorts and filters and of the live
 * updates alone. For that, the page's document and assets are served from a build of the same
 * sources with source maps (a production build: the same code the host serves; page.route), while
 * the API and the push stream are the host's.
 *
 * Everything started is stopped at the end, also on failure or Ctrl-C: browser, simulator, app,
 * and the temp folders. Skipped (with a note) when /usr/bin/chromium is missing.
 *
 * @example
 * npm run bench -- ui-real                          # 10,000 devices
 * BENCH_QUICK=1 npm run bench -- ui-real            # 2,000 devices
 * BENCH_DEVICES=5000 npm run bench -- ui-real
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { connectToRunningApp } from '../../src/host/app-client.js';
import { contentTypeOf } from '../../src/host/content-types.js';
import type { DeviceRecordView } from '../../src/host/contract.js';
import { simDeviceId } from '../../src/sim/sim-fleet.js';
import { openBrokerAccounts } from '../../src/transports/broker-accounts.js';
import type { Serve } from '../host/serve-rig.js';
import { ROOT, startServe } from '../host/serve-rig.js';
import { buildRenderer } from '../renderer/serve-bundle.js';
import { percentile, report } from './bench-kit.js';
import type { FrameRun, LongFrame } from './ui-kit.js';
import {
  CHROMIUM,
  calibrationPage,
  frameSummary,
  LONG_FRAME_MS,
  measureFrames,
  metrics,
  ms01,
  profileAttribution,
  sleep,
  sourceLookup,
  split,
  summarizeLongFrames,
} from './ui-kit.js';

const SUITE = 'ui-real';
/** What the app printed, for the report of a failed run. */
let hostOutput = () => '';
const QUICK = process.env.BENCH_QUICK === '1';
const DEVICES = Number(process.env.BENCH_DEVICES ?? (QUICK ? 2_000 : 10_000));
const INTERVAL_MS = Number(process.env.BENCH_INTERVAL_MS ?? Math.max(1_000, Math.round(DEVICES / 2)));
const PREFIX = 'ur';
const KIND = 'fleetvisor.generic';
const FRAME_WINDOW_MS = QUICK ? 6_000 : 10_000;
const STILL_WINDOW_MS = QUICK ? 3_000 : 5_000;
const SCROLL_PX_PER_FRAME = 120;
const SORT_GOAL_MS = 50;
const FILTER_GOAL_MS = 50;
/** Frame p95 within this factor of the static page's, scrolled the same way. */
const FRAME_FACTOR = 1.25;
/** Each device's id as the simulator names it: `ur-m001` … `ur-m10000`. */
const idOf = (n: number) => simDeviceId(PREFIX, 'm', n, 3);

const MACHINE =
  'headless Chromium, --disable-gpu (software raster), 2 shared cores with the host and the simulator';
const WORKLOAD = `${DEVICES.toLocaleString('en-US')} simulated MQTT devices, telemetry every ${INTERVAL_MS} ms each (≈ ${Math.round((DEVICES * 1000) / INTERVAL_MS)} msg/s), real host and push stream`;

// ---- the fleet ---------------------------------------------------------------------------------

const NAMES = ['Pump', 'Valve', 'Meter', 'Boiler', 'Fan', 'Chiller', 'Compressor'];

/** What the bench imports: names and tags vary so that the name sort and the filter have work. */
function fleetRecords(): DeviceRecordView[] {
  const out: DeviceRecordView[] = [];
  for (let n = 1; n <= DEVICES; n++)
    out.push({
      id: idOf(n),
      kind: KIND,
      name: `${NAMES[n % NAMES.length]} ${Math.ceil(n / NAMES.length)} · hall ${n % 12}`,
      tags: [`hall-${n % 12}`, `line-${n % 37}`],
      attributes: {},
    });
  return out;
}

/** How many rows the fleet view's text filter keeps (its `matches`; firmware never matches these texts). */
function expectedCount(records: readonly DeviceRecordView[], text: string): number {
  const q = text.toLowerCase();
  if (!q) return records.length;
  let n = 0;
  for (const r of records)
    if (
      r.id.toLowerCase().includes(q) ||
      r.name.toLowerCase().includes(q) ||
      r.tags.some((t) => t.toLowerCase().includes(q))
    )
      n++;
  return n;
}

// ---- processes ---------------------------------------------------------------------------------

interface Sim {
  readonly process: ChildProcess;
  /** The last lines it printed (it prints one per device). */
  tail(): string;
  stop(): Promise<void>;
}

/** `npm run sim -- --mqtt N …` as one Node process (no npm/sh in between, so one pid to stop). */
async function startSim(brokerUrl: string, secret: string): Promise<Sim> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'src/sim/cli.ts'),
      '--mqtt',
      String(DEVICES),
      '--url',
      brokerUrl,
      '--interval',
      String(INTERVAL_MS),
      '--prefix',
      PREFIX,
      '--provisioning-secret',
      secret,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  let running = false;
  const onData = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4_000);
    if (/device\(s\) running/.test(tail)) running = true;
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + 60_000 + DEVICES * 50;
  while (!running) {
    if (child.exitCode !== null) throw new Error(`the simulator exited early:\n${tail}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the simulator did not start its ${DEVICES} devices in time:\n${tail}`);
    }
    await sleep(250);
  }
  return { process: child, tail: () => tail, stop };
}

// ---- in-page measurements ----------------------------------------------------------------------

declare global {
  interface Window {
    __bench?: { at: number; type: string };
  }
}

/** Remembers the timestamp of the last trusted click or keydown, where the user's wait begins. */
async function watchInput(page: Page): Promise<void> {
  await page.evaluate(() => {
    const note = (e: Event) => {
      window.__bench = { at: e.timeStamp, type: e.type };
    };
    window.addEventListener('click', note, true);
    window.addEventListener('keydown', note, true);
  });
}

/**
 * What must hold in the page: the element at `sel` has `attr` equal to `equals`, or its text equal
 * to `text`, or its text containing `contains`, or (an input) its value equal to `value`. Data, not
 * code: the app's CSP forbids eval in the page.
 */
interface Check {
  readonly sel: string;
  readonly attr?: string;
  readonly equals?: string;
  readonly text?: string;
  readonly contains?: string;
  readonly value?: string;
}

/**
 * Runs `act` (a click, a key) and answers how long, from that input's event timestamp, until the
 * first frame in which every check holds has been painted. The rAF watch starts before the input,
 * so no frame is missed; the message posted from that rAF runs after the frame's paint.
 */
async function timeToPaint(page: Page, act: () => Promise<void>, checks: readonly Check[]): Promise<number> {
  await page.evaluate(() => {
    window.__bench = { at: -1, type: '' };
  });
  const measured = page.evaluate(
    (checks) =>
      new Promise<number>((resolve, reject) => {
        const holds = () =>
          checks.every((c) => {
            const el = document.querySelector(c.sel);
            if (!el) return false;
            if (c.attr !== undefined) return el.getAttribute(c.attr) === c.equals;
            if (c.text !== undefined) return el.textContent === c.text;
            if (c.contains !== undefined) return (el.textContent ?? '').includes(c.contains);
            return (el as HTMLInputElement).value === c.value;
          });
        const started = performance.now();
        const frame = () => {
          const input = window.__bench?.at ?? -1;
          if (input >= 0 && holds()) {
            const channel = new MessageChannel();
            channel.port1.onmessage = () => resolve(performance.now() - input);
            channel.port2.postMessage(null);
            return;
          }
          if (performance.now() - started > 30_000) {
            reject(new Error(`not painted within 30 s: ${JSON.stringify(checks)}`));
            return;
          }
          requestAnimationFrame(frame);
        };
        requestAnimationFrame(frame);
      }),
    checks,
  );
  await act();
  return await measured;
}

/** Long Animation Frames observed while `during` runs. */
async function withLongFrames<T>(
  page: Page,
  during: () => Promise<T>,
): Promise<{ value: T; long: LongFrame[] }> {
  await page.evaluate(() => {
    const w = window as unknown as { __loaf: LongFrame[]; __loafObserver?: PerformanceObserver };
    w.__loaf = [];
    w.__loafObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries() as unknown as {
        duration: number;
        startTime: number;
        renderStart: number;
        styleAndLayoutStart: number;
        scripts: { invoker: string; sourceURL: string; sourceFunctionName: string; duration: number }[];
      }[])
        w.__loaf.push({
          duration: e.duration,
          renderStart: e.renderStart ? e.renderStart - e.startTime : 0,
          styleAndLayout:
            e.styleAndLayoutStart && e.styleAndLayoutStart > 0
              ? e.startTime + e.duration - e.styleAndLayoutStart
              : 0,
          scripts: e.scripts.map((s) => ({
            invoker: s.invoker,
            source: `${s.sourceURL.split('/').pop() ?? ''} ${s.sourceFunctionName}`.trim(),
            duration: s.duration,
          })),
        });
    });
    w.__loafObserver.observe({ type: 'long-animation-frame', buffered: false });
  });
  const value = await during();
  await sleep(200);
  const long = await page.evaluate(() => {
    const w = window as unknown as { __loaf: LongFrame[]; __loafObserver?: PerformanceObserver };
    w.__loafObserver?.disconnect();
    return w.__loaf;
  });
  return { value, long };
}

/** The fleet view's sortable columns, in its order. */
const COLUMNS = ['id', 'name', 'kind', 'state', 'link', 'firmware', 'lastSeen', 'drift', 'restarts'] as const;

/** Every column clicked twice (ascending and descending), `rounds` times; ms per click, by column. */
async function sortClicks(page: Page, rounds: number): Promise<{ column: string; ms: number }[]> {
  const out: { column: string; ms: number }[] = [];
  const headers = page.locator('[data-testid="fleet-scroll"] [role="columnheader"] button.sort');
  for (let round = 0; round < rounds; round++)
    for (const [index, column] of COLUMNS.entries())
      for (let click = 0; click < 2; click++) {
        // The first header cell is the select-all box; the columns follow.
        const sel = `[data-testid="fleet-scroll"] [role="columnheader"]:nth-child(${index + 2})`;
        const now = await page.locator(sel).getAttribute('aria-sort');
        const want = now === 'ascending' ? 'descending' : 'ascending';
        const box = await headers.nth(index).boundingBox();
        if (!box) throw new Error(`no header for ${column}`);
        const ms = await timeToPaint(
          page,
          () => page.mouse.click(box.x + box.width / 2, box.y + box.height / 2),
          [{ sel, attr: 'aria-sort', equals: want }],
        );
        out.push({ column: `${column} ${want === 'ascending' ? '▴' : '▾'}`, ms });
        await sleep(150);
      }
  return out;
}

/** Texts typed one key at a time (none matches a firmware version). */
const FILTER_TEXTS = ['pump 1', 'hall-7', `${PREFIX}-m12`, 'line-3', 'boiler'];

async function filterKeys(
  page: Page,
  records: readonly DeviceRecordView[],
): Promise<{ text: string; shown: number; ms: number }[]> {
  const box = page.getByLabel('Filter devices');
  const out: { text: string; shown: number; ms: number }[] = [];
  const total = records.length.toLocaleString('en-US');
  const countShows = (text: string, shown: number): Check[] => [
    { sel: '.view.fleet .counts strong', text: shown.toLocaleString('en-US') },
    { sel: '.view.fleet .counts', contains: text ? ` of ${total} devices` : `${total} devices` },
    { sel: '.view.fleet input.filter-text', value: text },
  ];
  for (const text of FILTER_TEXTS) {
    await box.click();
    for (let i = 1; i <= text.length; i++) {
      const typed = text.slice(0, i);
      const shown = expectedCount(records, typed);
      const ms = await timeToPaint(page, () => page.keyboard.press(text[i - 1]!), countShows(typed, shown));
      out.push({ text: typed, shown, ms });
      await sleep(120);
    }
    // Cleared at once: select the text, one Backspace, every row back.
    await page.keyboard.press('Control+A');
    const ms = await timeToPaint(
      page,
      () => page.keyboard.press('Backspace'),
      countShows('', records.length),
    );
    out.push({ text: '', shown: records.length, ms });
    await sleep(150);
  }
  return out;
}

function stats(values: number[]): { p50: number; p95: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted.at(-1) ?? Number.NaN };
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.log(`# ${SUITE}: skipped — ${CHROMIUM} is missing (apt-get install -y chromium)`);
    return;
  }
  const cleanup: (() => Promise<unknown>)[] = [];
  const runCleanup = async () => {
    while (cleanup.length > 0) await cleanup.pop()!().catch((e: unknown) => console.error(`# cleanup: ${e}`));
  };
  const onSignal = () => {
    void runCleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const dataDir = await mkdtemp(join(tmpdir(), 'fleetvisor-ui-real-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-ui-real-renderer-'));
    cleanup.push(() => rm(outDir, { recursive: true, force: true }));

    const tBuild = performance.now();
    await buildRenderer(outDir, { sourcemap: true });
    console.log(
      `# ${SUITE}: renderer built with source maps in ${((performance.now() - tBuild) / 1000).toFixed(1)} s`,
    );

    // The kind's first-contact secret: the devices need no account each (an scrypt apiece).
    const secret = openBrokerAccounts(dataDir).issueProvisioning(KIND);
    const tHost = performance.now();
    const serve: Serve = await startServe(dataDir, ['--no-demo', '--broker-port', '0', '--port', '0']);
    cleanup.push(() => serve.stop());
    hostOutput = () => serve.output();
    const connected = connectToRunningApp(dataDir, { timeoutMs: 600_000 });
    if (!connected.ok) throw new Error(connected.error.message);
    const app = connected.value;
    const url = /Open the Fleetvisor UI at: (\S+)/.exec(serve.output())![1]!;
    const first = await app.call('stats', {});
    if (!first.ok || !first.value.broker.url) throw new Error(`no broker: ${JSON.stringify(first)}`);
    const brokerUrl = first.value.broker.url;
    console.log(
      `# ${SUITE}: host up in ${((performance.now() - tHost) / 1000).toFixed(1)} s, broker ${brokerUrl}`,
    );

    const records = fleetRecords();
    const tImport = performance.now();
    const imported = await app.call('devicesImport', { text: JSON.stringify(records), format: 'json' });
    if (!imported.ok) throw new Error(`import: ${imported.error.code}: ${imported.error.message}`);
    if (imported.value.added !== DEVICES)
      throw new Error(`import added ${imported.value.added} of ${DEVICES}, failed ${imported.value.failed}`);
    console.log(
      `# ${SUITE}: ${DEVICES} devices imported in ${((performance.now() - tImport) / 1000).toFixed(1)} s (one devicesImport call)`,
    );

    const tSim = performance.now();
    const sim = await startSim(brokerUrl, secret);
    cleanup.push(() => sim.stop());
    console.log(
      `# ${SUITE}: simulator started ${DEVICES} devices in ${((performance.now() - tSim) / 1000).toFixed(1)} s`,
    );
    let online = 0;
    const onlineBy = Date.now() + 120_000 + DEVICES * 20;
    while (online < DEVICES) {
      const s = await app.call('stats', {});
      if (s.ok) online = s.value.devices.online;
      if (Date.now() > onlineBy) throw new Error(`only ${online} of ${DEVICES} devices came online`);
      if (online < DEVICES) await sleep(1_000);
    }
    console.log(
      `# ${SUITE}: all ${DEVICES} online ${((performance.now() - tSim) / 1000).toFixed(1)} s after the simulator started`,
    );

    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        // A document fulfilled by page.route has no address space: without this, Chromium's local
        // network access checks refuse its WebSocket to the host on 127.0.0.1.
        '--disable-features=LocalNetworkAccessChecks',
      ],
    });
    cleanup.push(() => browser.close());

    // The machine's own baseline, under the same load: a static page of as many rows.
    const calibration = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await calibration.setContent(calibrationPage(DEVICES));
    // tsx compiles with keepNames: functions passed to page.evaluate call its `__name` helper.
    await calibration.evaluate('window.__name = (f) => f');
    await sleep(1_000);
    let baseline: FrameRun | undefined;
    for (const [label, step] of [
      ['idle', 0],
      [`scrolling ${SCROLL_PX_PER_FRAME} px/frame`, SCROLL_PX_PER_FRAME],
    ] as const) {
      const run = await measureFrames(calibration, 4_000, step ? '#s' : null, step);
      if (step) baseline = run;
      console.log(
        `# ${SUITE}.calibration: a static ${DEVICES}-row page (no script, no updates), ${label}: ${frameSummary(run)}; load average ${loadavg()[0]!.toFixed(2)}`,
      );
    }
    await calibration.close();
    const baselineP95 = ms01(
      percentile(
        [...baseline!.deltas].sort((a, b) => a - b),
        95,
      ),
    );

    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    // The page's document and assets from the source-mapped build; API and push stream the host's.
    const origin = new URL(url).origin;
    await page.route(`${origin}/**`, async (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path.startsWith('/api') || path.startsWith('/ws') || (extname(path) === '' && path !== '/'))
        return route.continue();
      const file = join(outDir, path === '/' ? 'index.html' : path);
      if (!file.startsWith(outDir) || !existsSync(file)) return route.continue();
      return route.fulfill({ body: await readFile(file), contentType: contentTypeOf(file) });
    });
    const cdp: CDPSession = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.addInitScript({ content: 'window.__name = (f) => f;' });
    await page.goto(url);
    try {
      await page.getByTestId('nav-fleet').click();
      await page.getByTestId('fleet-row').first().waitFor({ timeout: 60_000 });
      await page
        .getByTestId('online-count')
        .filter({ hasText: `${DEVICES.toLocaleString('en-US')} online` })
        .waitFor({ timeout: 60_000 });
    } catch (error) {
      const text = await page.evaluate(() => document.body.innerText.slice(0, 600)).catch(() => '?');
      throw new Error(`the fleet view did not show the fleet: ${text} | page errors: ${errors.join(' | ')}`, {
        cause: error,
      });
    }
    await sleep(2_000);
    await watchInput(page);
    const ingest = await app.call('stats', {});
    if (ingest.ok)
      console.log(
        `# ${SUITE}: ${WORKLOAD}; the host reports an ingest of ${ingest.value.ingestRate.toFixed(0)} msg/s, ${ingest.value.devices.online} online, data loss ${ingest.value.dataLoss.total}`,
      );

    // 1. Sort.
    const sorts = await withLongFrames(page, () => sortClicks(page, 2));
    const sortMs = stats(sorts.value.map((s) => s.ms));
    const byColumn = new Map<string, number[]>();
    for (const s of sorts.value) {
      const key = s.column.split(' ')[0]!;
      byColumn.set(key, [...(byColumn.get(key) ?? []), s.ms]);
    }
    const sortNote = `click on a column header → new order painted, ${sorts.value.length} clicks (${COLUMNS.length} columns × 2 directions × 2), ${DEVICES.toLocaleString('en-US')} rows; ${WORKLOAD}; ${MACHINE}`;
    report(SUITE, 'sort_p50', sortMs.p50, 'ms', '<=', SORT_GOAL_MS, sortNote);
    report(
      SUITE,
      'sort_p95',
      sortMs.p95,
      'ms',
      '<=',
      SORT_GOAL_MS,
      `max ${sortMs.max.toFixed(0)} ms; ${sortNote}`,
    );
    console.log(
      `# ${SUITE}.sort: median by column: ${[...byColumn.entries()].map(([k, v]) => `${k} ${stats(v).p50.toFixed(0)}`).join(', ')} ms`,
    );
    console.log(`# ${SUITE}.sort: ${summarizeLongFrames(sorts.long)}`);

    // 2. Filter.
    const filters = await withLongFrames(page, () => filterKeys(page, records));
    const filterMs = stats(filters.value.map((f) => f.ms));
    const filterNote = `keydown in the filter box → the filtered rows and their count painted, ${filters.value.length} keys typing ${FILTER_TEXTS.map((t) => `'${t}'`).join(', ')} one key at a time, each then cleared; ${WORKLOAD}; ${MACHINE}`;
    report(SUITE, 'filter_p50', filterMs.p50, 'ms', '<=', FILTER_GOAL_MS, filterNote);
    report(
      SUITE,
      'filter_p95',
      filterMs.p95,
      'ms',
      '<=',
      FILTER_GOAL_MS,
      `max ${filterMs.max.toFixed(0)} ms; ${filterNote}`,
    );
    console.log(
      `# ${SUITE}.filter: per key (text → rows shown: ms): ${filters.value.map((f) => `'${f.text}'→${f.shown}: ${f.ms.toFixed(0)}`).join(', ')}`,
    );
    console.log(`# ${SUITE}.filter: ${summarizeLongFrames(filters.long)}`);

    // 3. Frames: watching, then scrolling, against the static page's.
    await page.getByTestId('fleet-scroll').evaluate((el) => {
      el.scrollTop = 0;
    });
    const still = await measureFrames(page, STILL_WINDOW_MS, null, 0);
    console.log(
      `# ${SUITE}.fleet: live updates, not scrolling, ${(STILL_WINDOW_MS / 1000).toFixed(0)} s: ${frameSummary(still)}; load average ${loadavg()[0]!.toFixed(2)}`,
    );
    const before = await metrics(cdp);
    const t0 = performance.now();
    const run = await measureFrames(
      page,
      FRAME_WINDOW_MS,
      '[data-testid="fleet-scroll"]',
      SCROLL_PX_PER_FRAME,
    );
    const wall = performance.now() - t0;
    const after = await metrics(cdp);
    const sorted = [...run.deltas].sort((a, b) => a - b);
    const frameGoal = ms01(FRAME_FACTOR * baselineP95);
    const frameNote = `fleet view, ${DEVICES.toLocaleString('en-US')} rows, ${(FRAME_WINDOW_MS / 1000).toFixed(0)} s scrolling ${SCROLL_PX_PER_FRAME} px/frame with live updates; ${frameSummary(run)}; goal = ${FRAME_FACTOR} × the static page's p95 (${baselineP95} ms) in this run; ${WORKLOAD}; ${MACHINE}; load average ${loadavg()[0]!.toFixed(2)}`;
    report(SUITE, 'fleet_frame_p95', ms01(percentile(sorted, 95)), 'ms', '<=', frameGoal, frameNote);
    report(
      SUITE,
      'fleet_frame_p50',
      ms01(percentile(sorted, 50)),
      'ms',
      '<=',
      frameGoal,
      `static page p50 ${ms01(
        percentile(
          [...baseline!.deltas].sort((a, b) => a - b),
          50,
        ),
      )} ms; ${WORKLOAD}`,
    );
    report(
      SUITE,
      'fleet_long_frames',
      run.deltas.filter((d) => d > LONG_FRAME_MS).length,
      'frames',
      '<=',
      baseline!.deltas.filter((d) => d > LONG_FRAME_MS).length,
      `frames > ${LONG_FRAME_MS} ms of ${run.deltas.length}; goal = the static page's count in this run`,
    );
    console.log(
      `# ${SUITE}.fleet: ${split(before, after, wall)} (CDP Performance.getMetrics over the window)`,
    );
    console.log(`# ${SUITE}.fleet: ${summarizeLongFrames(run.longFrames)}`);

    // Where the time goes (after the measured windows: profiling costs time).
    const lookup = await sourceLookup(outDir);
    console.log(
      `# ${SUITE}: JS self time by source, CPU profile of one more round of sorts: ${await profileAttribution(cdp, lookup, () => sortClicks(page, 1))}`,
    );
    console.log(
      `# ${SUITE}: JS self time by source, CPU profile of the filter keys: ${await profileAttribution(cdp, lookup, () => filterKeys(page, records))}`,
    );
    console.log(
      `# ${SUITE}: JS self time by source, 3 s CPU profile, live updates only: ${await profileAttribution(cdp, lookup, () => sleep(3_000))}`,
    );
    const end = await app.call('stats', {});
    if (end.ok)
      console.log(
        `# ${SUITE}: at the end the host reports ${end.value.devices.online} of ${end.value.devices.total} online, ingest ${end.value.ingestRate.toFixed(0)} msg/s, data loss ${end.value.dataLoss.total}`,
      );
    if (errors.length > 0) console.log(`# ${SUITE}: page errors: ${errors.slice(0, 5).join(' | ')}`);
  } finally {
    await runCleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    const printed = hostOutput().trim().split('\n').slice(-30).join('\n');
    if (printed) console.error(`# ${SUITE}: the app's last lines:\n${printed}`);
    process.exit(1);
  },
);
