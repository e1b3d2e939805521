/**
 * The operator UI under a live fleet, in a real browser: builds the renderer once into a temp
 * folder, serves it, and opens Debian's Chromium (playwright-core, no browser download) at
 * `?fake=5000&hz=1` — 5,000 simulated devices, each connected one reporting telemetry once a
 * second, diffs pushed every 100 ms. Then:
 *
 *   1. Fleet view: frame times (requestAnimationFrame deltas collected in the page) over ~10 s
 *      while the live diffs flow and the table scrolls 120 px per frame (bouncing at the ends).
 *   2. Tree view: the same, with some device subtrees opened, while the tree is rebuilt by the
 *      pushes (about once a second) and the tree scrolls.
 *   3. Heap: 10 minutes (BENCH_QUICK=1: 1 minute) in 10 s slots; each slot visits the next view
 *      of the cycle (fleet → tree → a device detail → system → events), scrolling it if it
 *      scrolls, then returns to the fleet view, forces a GC (CDP HeapProfiler.collectGarbage)
 *      and samples the JS heap in use (CDP Runtime.getHeapUsage) — always in the same view, so
 *      the samples compare like with like. Reports the heap after the run and the least-squares
 *      slope over the second half of the samples (the trend once warm, not the warm-up).
 *
 * Along the way it prints `#` lines: a calibration (a static 5,000-row page, idle and scrolled
 * the same way: what this machine manages with no app at all), frames with live updates but no
 * scrolling, where the time goes while scrolling (CDP Performance.getMetrics over the measured
 * window; after it, a 3 s trace of all threads and 3 s CPU profiles attributed to source lines
 * through the bundle's source maps), what the long frames ran (Long Animation Frame entries),
 * the DOM counters and a heap-snapshot census (what grew) at the start and end of the heap run.
 *
 * Caveats that the notes repeat: headless Chromium with --disable-gpu paints in software; the
 * simulated fleet runs inside the page, so its tick (≈10 diffs/s built from 5,000 devices) costs
 * main-thread time a real host would spend elsewhere (the real client parses JSON instead); the
 * machine has 2 shared cores. rAF deltas are multiples of the 60 Hz vsync (16.7 ms), so a page
 * that never drops a frame measures p95 ≈ 16.7 ms: the issue's "≤ 16 ms" reads as "within one
 * 60 Hz frame", and the goal printed is that frame, 16.7 ms.
 *
 * Skipped (with a note) when /usr/bin/chromium is missing (`apt-get install -y chromium`).
 *
 * @example
 * npm run bench -- ui                  # 10-minute heap run
 * BENCH_QUICK=1 npm run bench -- ui    # 1-minute heap run
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { buildRenderer, serveBundle } from '../renderer/serve-bundle.js';
import { percentile, report } from './bench-kit.js';
import type { SourceLookup } from './ui-kit.js';
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

const SUITE = 'ui';
const QUICK = process.env.BENCH_QUICK === '1';
const DEVICES = 5_000;
const HZ = 1;
const FRAME_WINDOW_MS = QUICK ? 6_000 : 10_000;
const STILL_WINDOW_MS = QUICK ? 3_000 : 5_000;
const SCROLL_PX_PER_FRAME = 120;
const HEAP_RUN_MS = QUICK ? 60_000 : 600_000;
const HEAP_SAMPLE_EVERY_MS = 10_000;
/** One 60 Hz frame: rAF deltas come in multiples of it. The issue's goal, "≤ 16 ms", is this. */
const FRAME_GOAL_MS = 16.7;
/**
 * The heap bound. Measured on this build (forced GC, fleet view, `?hz=1`): 2.8 MB with 1 device,
 * 4.8 MB at 1,000, 10.6 MB at 5,000, 45 MB at 20,000 — about 1.5–2.3 KB per device: its row
 * (in the page the simulator and the live model share the same objects), its three tree nodes and
 * the simulator's caches and histories. At 5,000 devices
 * with every view visited (uPlot, series rings, events) that is ≈ 14 MB. 64 MB is ≈ 4.5× that:
 * room for the transient second tree generation during a rebuild, V8's slack and rows that grow a
 * field or two, while a renderer that kept old trees or rows around would cross it within
 * minutes. (150 MB would sit an order of magnitude above the measurement and catch nothing a
 * 10-minute run could show; the growth figure below is the leak detector, this one the size.)
 */
const HEAP_GOAL_MB = 64;
const GROWTH_GOAL_MB_PER_MIN = 1;

const MACHINE = 'headless Chromium, --disable-gpu (software raster), 2 shared cores, fleet simulated in-page';
const WORKLOAD = `${DEVICES} devices, telemetry ${HZ} Hz each, diffs every 100 ms`;

// ---- frames ------------------------------------------------------------------------------------

async function runFrames(
  page: Page,
  cdp: CDPSession,
  view: 'fleet' | 'tree',
  scroller: string,
  extra: string,
): Promise<void> {
  // First the operator only watching: live updates, no scrolling.
  const still = await measureFrames(page, STILL_WINDOW_MS, null, 0);
  const animations = await page.evaluate(() => document.getAnimations().length);
  console.log(
    `# ui.${view}: live updates, not scrolling, ${(STILL_WINDOW_MS / 1000).toFixed(0)} s: ${frameSummary(still)}; ` +
      `${animations} CSS animations running; load average ${loadavg()[0]!.toFixed(2)}`,
  );
  const before = await metrics(cdp);
  const t0 = performance.now();
  const run = await measureFrames(page, FRAME_WINDOW_MS, scroller, SCROLL_PX_PER_FRAME);
  const wall = performance.now() - t0;
  const after = await metrics(cdp);
  const sorted = [...run.deltas].sort((a, b) => a - b);
  const long = run.deltas.filter((d) => d > LONG_FRAME_MS).length;
  const over = run.deltas.filter((d) => d > FRAME_GOAL_MS + 0.5).length;
  const fps = (1000 * run.deltas.length) / run.deltas.reduce((a, b) => a + b, 0);
  const what = `${view} view, ${WORKLOAD}, ${(FRAME_WINDOW_MS / 1000).toFixed(0)} s scrolling ${SCROLL_PX_PER_FRAME} px/frame${extra}`;
  const tail = `${run.deltas.length} frames, ${fps.toFixed(1)} fps, ${over} frames over one vsync, max ${sorted.at(-1)?.toFixed(0)} ms`;
  report(
    SUITE,
    `${view}_frame_p95`,
    ms01(percentile(sorted, 95)),
    'ms',
    '<=',
    FRAME_GOAL_MS,
    `${what}; ${tail}; goal = one 60 Hz frame (issue: ≤ 16 ms; rAF deltas are vsync multiples); ${MACHINE}; load average ${loadavg()[0]!.toFixed(2)}`,
  );
  report(
    SUITE,
    `${view}_frame_p50`,
    ms01(percentile(sorted, 50)),
    'ms',
    '<=',
    FRAME_GOAL_MS,
    `${what}; ${MACHINE}`,
  );
  report(
    SUITE,
    `${view}_long_frames`,
    long,
    'frames',
    '<=',
    0,
    `frames > ${LONG_FRAME_MS} ms (a visible stutter) of ${run.deltas.length}; ${what}; ${MACHINE}`,
  );
  console.log(`# ui.${view}: ${split(before, after, wall)} (CDP Performance.getMetrics over the window)`);
  console.log(`# ui.${view}: ${summarizeLongFrames(run.longFrames)}`);
}

// ---- trace breakdown ---------------------------------------------------------------------------

interface TraceEvent {
  name: string;
  ph: string;
  pid: number;
  tid: number;
  ts: number;
  dur?: number;
  args?: { name?: string };
}

/** What a main-thread trace event's own time is, by its name. */
function stageOf(name: string): string | null {
  if (/GC|Scavenge|MarkCompact|Sweep/i.test(name)) return 'GC';
  if (/Style|UpdateLayoutTree|rebuildLayoutTree/i.test(name)) return 'style';
  if (/Layout|ShapeText/i.test(name)) return 'layout';
  if (/Paint|Composit|Commit|CullRect|Layeriz|HitTest|Raster/i.test(name)) return 'paint+commit';
  return null;
}

/** Script, by the outermost task around it. */
const TASK_KINDS: Record<string, string> = {
  TimerFire: 'script in timers (the simulated fleet tick, clocks)',
  FireAnimationFrame: 'script in rAF (store flush, React render, this bench)',
  EventDispatch: 'script in events',
};
const SCRIPT = /FunctionCall|v8|V8|EvaluateScript|RunMicrotasks|TimerFire|FireAnimationFrame|EventDispatch/;

/**
 * Traces every thread for the time `during` runs and splits it: the renderer's main thread by
 * what its time went to (script by the task that ran it — React's scheduler runs from a
 * MessagePort task, hence "other script" —, style, layout, paint and commit, GC), and the other
 * busy threads (software raster workers, the compositor, the display compositor drawing in
 * software) by their total, all as a share of the wall time (100% = one core).
 */
async function traceBreakdown(browser: Browser, page: Page, during: () => Promise<unknown>): Promise<string> {
  await browser.startTracing(page, {
    categories: [
      'devtools.timeline',
      'disabled-by-default-devtools.timeline',
      'v8.execute',
      'v8',
      'blink',
      'cc',
      'viz',
      'toplevel',
    ],
  });
  const t0 = performance.now();
  await during();
  const wall = (performance.now() - t0) * 1000; // µs, like the trace
  const buffer = await browser.stopTracing();
  const { traceEvents } = JSON.parse(buffer.toString('utf8')) as { traceEvents: TraceEvent[] };
  const names = new Map<string, string>();
  for (const e of traceEvents)
    if (e.ph === 'M' && e.name === 'thread_name') names.set(`${e.pid}:${e.tid}`, e.args?.name ?? '');
  const byThread = new Map<string, TraceEvent[]>();
  for (const e of traceEvents) {
    if (e.ph !== 'X' || e.dur === undefined) continue;
    const key = `${e.pid}:${e.tid}`;
    const list = byThread.get(key);
    if (list) list.push(e);
    else byThread.set(key, [e]);
  }
  let mainKey = '';
  for (const [key, list] of byThread)
    if (names.get(key) === 'CrRendererMain' && list.length > (byThread.get(mainKey)?.length ?? 0))
      mainKey = key;
  const main = byThread.get(mainKey);
  if (!main) return 'no main-thread trace events';

  const pct = (us: number) => `${((100 * us) / wall).toFixed(0)}%`;
  const buckets = new Map<string, number>();
  const add = (k: string, us: number) => buckets.set(k, (buckets.get(k) ?? 0) + us);
  main.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0));
  const stack: { e: TraceEvent; end: number; child: number; bucket: string }[] = [];
  const close = (upTo: number) => {
    while (stack.length > 0 && stack.at(-1)!.end <= upTo) {
      const top = stack.pop()!;
      add(top.bucket, Math.max(0, (top.e.dur ?? 0) - top.child));
    }
  };
  let busy = 0;
  for (const e of main) {
    close(e.ts);
    const parent = stack.at(-1);
    if (parent) parent.child += e.dur ?? 0;
    else busy += e.dur ?? 0;
    const task = stack.map((s) => TASK_KINDS[s.e.name]).find((k) => k !== undefined) ?? TASK_KINDS[e.name];
    const inScript = SCRIPT.test(e.name) || stack.some((s) => SCRIPT.test(s.e.name));
    const bucket =
      stageOf(e.name) ??
      (inScript ? (task ?? 'other script (React scheduler, messages)') : 'other (tasks, scheduling, IPC)');
    stack.push({ e, end: e.ts + (e.dur ?? 0), child: 0, bucket });
  }
  close(Number.POSITIVE_INFINITY);
  const parts = [...buckets.entries()]
    .sort((x, y) => y[1] - x[1])
    .filter(([, v]) => v / wall >= 0.01)
    .map(([k, v]) => `${k} ${pct(v)}`)
    .join(', ');

  // Other threads: busy time = the sum of their top-level events.
  const groups = new Map<string, number>();
  for (const [key, list] of byThread) {
    if (key === mainKey) continue;
    const name = names.get(key) ?? '';
    const group = /Worker|TileWorker/.test(name)
      ? 'raster workers (software) + GC helpers'
      : name === 'Compositor'
        ? 'compositor'
        : name === 'VizCompositorThread'
          ? 'display (software draw)'
          : null;
    if (!group) continue;
    list.sort((a, b) => a.ts - b.ts || (b.dur ?? 0) - (a.dur ?? 0));
    let end = -1;
    let sum = 0;
    for (const e of list) {
      if (e.ts >= end) {
        sum += e.dur ?? 0;
        end = e.ts + (e.dur ?? 0);
      }
    }
    groups.set(group, (groups.get(group) ?? 0) + sum);
  }
  const others = [...groups.entries()].map(([k, v]) => `${k} ${pct(v)}`).join(', ');
  return (
    `renderer main thread busy ${pct(busy)} of ${(wall / 1e6).toFixed(1)} s (${parts}); ` +
    `other threads: ${others} (100% = one core; the machine has 2)`
  );
}

// ---- heap --------------------------------------------------------------------------------------

async function heapMB(cdp: CDPSession): Promise<number> {
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
  const usage = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
  return usage.usedSize / 1e6;
}

type Census = Map<string, { count: number; bytes: number }>;

/**
 * A heap snapshot (after a GC) reduced to object counts and self sizes by kind: constructor name,
 * or for plain objects their first property names (`{at, from, to}`, as DevTools shows them), so
 * two censuses say what grew.
 */
async function heapCensus(cdp: CDPSession): Promise<Census> {
  const chunks: string[] = [];
  const onChunk = (e: { chunk: string }) => chunks.push(e.chunk);
  cdp.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
  await cdp.send('HeapProfiler.enable');
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  cdp.off('HeapProfiler.addHeapSnapshotChunk', onChunk);
  await cdp.send('HeapProfiler.disable');
  const snap = JSON.parse(chunks.join('')) as {
    snapshot: {
      meta: {
        node_fields: string[];
        node_types: [string[]];
        edge_fields: string[];
        edge_types: [string[]];
      };
    };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const { meta } = snap.snapshot;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const nType = meta.node_fields.indexOf('type');
  const nName = meta.node_fields.indexOf('name');
  const nSize = meta.node_fields.indexOf('self_size');
  const nEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const census: Census = new Map();
  let edge = 0;
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = nodeTypes[snap.nodes[i + nType]!] ?? '?';
    const name = snap.strings[snap.nodes[i + nName]!] ?? '?';
    const edges = snap.nodes[i + nEdges]!;
    let key: string;
    if (type === 'object' && name === 'Object') {
      const props: string[] = [];
      for (let e = edge; e < edge + edges * ef && props.length < 4; e += ef)
        if (edgeTypes[snap.edges[e + eType]!] === 'property') {
          const prop = snap.strings[snap.edges[e + eName]!] ?? '';
          if (prop !== '__proto__' && prop !== 'map') props.push(prop);
        }
      key = `{${props.join(', ')}}`;
    } else if (type === 'object' || type === 'native') key = name.split(' ')[0] ?? name;
    else if (type === 'closure') key = `(closure ${name || 'anonymous'})`;
    else key = `(${type})`;
    edge += edges * ef;
    const entry = census.get(key);
    const size = snap.nodes[i + nSize]!;
    if (entry) {
      entry.count++;
      entry.bytes += size;
    } else census.set(key, { count: 1, bytes: size });
  }
  return census;
}

function censusGrowth(before: Census, after: Census): string {
  const rows = [...after.entries()]
    .map(([k, v]) => {
      const b = before.get(k) ?? { count: 0, bytes: 0 };
      return { k, count: v.count - b.count, bytes: v.bytes - b.bytes };
    })
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, 6)
    .filter((r) => r.bytes > 0);
  return rows.length === 0
    ? 'nothing grew'
    : rows.map((r) => `${r.k} +${r.count} (+${(r.bytes / 1e6).toFixed(2)} MB self)`).join(', ');
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return Number.NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return num / den;
}

async function openTreeSubtrees(page: Page, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const closed = page.locator('[data-testid="tree-node"][aria-expanded="false"] button.caret');
    if ((await closed.count()) === 0) return;
    await closed.first().click();
  }
}

/** One step of the heap run's view cycle; `k` varies which device, which rows. */
async function visit(page: Page, step: number, k: number): Promise<string> {
  switch (step) {
    case 0: {
      await page.getByTestId('nav-fleet').click();
      await page.getByTestId('fleet-row').first().waitFor();
      return 'fleet';
    }
    case 1: {
      await page.getByTestId('nav-tree').click();
      await page.getByTestId('tree-node').first().waitFor();
      await page.locator('.tree-scroll').evaluate(
        (el, top) => {
          el.scrollTop = top;
        },
        (k * 2_600) % 100_000,
      );
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await openTreeSubtrees(page, 2);
      return 'tree';
    }
    case 2: {
      await page.getByTestId('nav-fleet').click();
      await page.getByTestId('fleet-row').first().waitFor();
      await page.getByTestId('fleet-scroll').evaluate(
        (el, top) => {
          el.scrollTop = top;
        },
        ((k * 977) % DEVICES) * 28,
      );
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const row = page.getByTestId('fleet-row').nth(10);
      const id = await row.getAttribute('data-device-id');
      await row.click();
      return `device ${id ?? '?'}`;
    }
    case 3: {
      await page.getByTestId('nav-system').click();
      await page.getByTestId('health-list').waitFor();
      return 'system';
    }
    default: {
      await page.getByTestId('nav-events').click();
      await page.getByTestId('event-row').first().waitFor();
      return 'events';
    }
  }
}

/** Nodes in the document (elements, text, comments), to tell the DOM counter's detached ones. */
function attachedNodes(page: Page): Promise<number> {
  return page.evaluate(() => {
    const walker = document.createTreeWalker(document, NodeFilter.SHOW_ALL);
    let n = 1;
    while (walker.nextNode()) n++;
    return n;
  });
}

async function goHome(page: Page): Promise<void> {
  await page.getByTestId('nav-fleet').click();
  await page.getByTestId('fleet-row').first().waitFor();
}

async function scrollerOf(page: Page): Promise<string | null> {
  for (const sel of ['[data-testid="fleet-scroll"]', '.tree-scroll', '[data-testid="events-scroll"]'])
    if ((await page.locator(sel).count()) > 0) return sel;
  return null;
}

/**
 * After a measured window (never during one: tracing and profiling cost time): where the main
 * thread's time goes while scrolling, by trace, then which source files the JS time is in, by
 * CPU profile — both while scrolling with live updates, then a profile without scrolling.
 */
async function diagnose(
  browser: Browser,
  page: Page,
  cdp: CDPSession,
  lookup: SourceLookup,
  view: string,
  sel: string,
): Promise<void> {
  const scroll = () => measureFrames(page, 3_000, sel, SCROLL_PX_PER_FRAME);
  console.log(
    `# ui.${view}: trace, 3 s scrolling with live updates: ${await traceBreakdown(browser, page, scroll)}`,
  );
  console.log(
    `# ui.${view}: JS self time by source, 3 s CPU profile scrolling with live updates: ${await profileAttribution(cdp, lookup, scroll)}`,
  );
  console.log(
    `# ui.${view}: JS self time by source, 3 s CPU profile, live updates only: ${await profileAttribution(cdp, lookup, () => sleep(3_000))}`,
  );
}

// ---- main --------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.log(`# ui: skipped — ${CHROMIUM} is missing (apt-get install -y chromium)`);
    return;
  }
  let outDir: string | undefined;
  let server: Server | undefined;
  let browser: Browser | undefined;
  try {
    outDir = await mkdtemp(join(tmpdir(), 'fleetvisor-ui-bench-'));
    const tBuild = performance.now();
    await buildRenderer(outDir, { mode: 'fake' });
    console.log(`# ui: renderer built in ${((performance.now() - tBuild) / 1000).toFixed(1)} s`);
    await writeFile(join(outDir, 'calibrate.html'), calibrationPage(DEVICES));
    const served = await serveBundle(outDir);
    server = served.server;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--enable-precise-memory-info',
      ],
    });
    // The machine's own baseline: a static page, idle, then scrolled like the table.
    const calibration = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await calibration.addInitScript({ content: 'window.__name = (f) => f;' });
    await calibration.goto(`${served.url}/calibrate.html`);
    await sleep(1_000);
    for (const [label, step] of [
      ['idle', 0],
      [`scrolling ${SCROLL_PX_PER_FRAME} px/frame`, SCROLL_PX_PER_FRAME],
    ] as const) {
      const run = await measureFrames(calibration, 4_000, step ? '#s' : null, step);
      console.log(
        `# ui.calibration: a static ${DEVICES}-row page (no script, no updates), ${label}: ${frameSummary(run)}; load average ${loadavg()[0]!.toFixed(2)}`,
      );
    }
    await calibration.close();

    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');

    // tsx compiles with keepNames: functions passed to page.evaluate call its `__name` helper.
    await page.addInitScript({ content: 'window.__name = (f) => f;' });
    await page.goto(`${served.url}/?fake=${DEVICES}&hz=${HZ}`);
    await page.getByTestId('fleet-row').first().waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="connection-status"][data-state="live"]').waitFor({ timeout: 30_000 });

    // Check the load: the system view's ingest figure (telemetry points per second, last 10 s).
    await sleep(11_000);
    await page.getByTestId('nav-system').click();
    await page.getByTestId('health-list').waitFor();
    const ingest =
      (await page
        .getByText(/msg\/s/)
        .first()
        .textContent()
        .catch(() => null)) ?? '?';
    console.log(
      `# ui: ${WORKLOAD}; the simulated host reports an ingest of ${ingest.trim()} ` +
        '(points, one per metric; only connected devices report)',
    );

    // 1. Fleet view.
    await page.getByTestId('nav-fleet').click();
    await page.getByTestId('fleet-row').first().waitFor();
    await sleep(2_000);
    const rowsInDom = await page.getByTestId('fleet-row').count();
    await runFrames(page, cdp, 'fleet', '[data-testid="fleet-scroll"]', `, ${rowsInDom} rows in the DOM`);
    const lookup = await sourceLookup(outDir);
    await diagnose(browser, page, cdp, lookup, 'fleet', '[data-testid="fleet-scroll"]');

    // 2. Tree view, some device subtrees open.
    await page.getByTestId('nav-tree').click();
    await page.getByTestId('tree-node').first().waitFor();
    await openTreeSubtrees(page, 12);
    await sleep(2_000);
    const treeRows = await page
      .locator('.tree-scroll > div')
      .evaluate((el) => Math.round(el.clientHeight / 26));
    await runFrames(page, cdp, 'tree', '.tree-scroll', `, 12 device subtrees open, ${treeRows} rows`);
    await diagnose(browser, page, cdp, lookup, 'tree', '.tree-scroll');

    // 3. Heap over the run, views cycling.
    // Each 10 s: an excursion to the next view of the cycle (scrolling it if it scrolls), back
    // to the fleet view, a forced GC, a sample — always taken in the same view, so the samples
    // compare like with like and whatever a view leaves behind accumulates in them.
    await goHome(page);
    const samples: { t: number; mb: number; view: string }[] = [];
    const start = performance.now();
    const count = Math.round(HEAP_RUN_MS / HEAP_SAMPLE_EVERY_MS);
    samples.push({ t: 0, mb: await heapMB(cdp), view: '-' });
    const dom0 = await cdp.send('Memory.getDOMCounters');
    const attached0 = await attachedNodes(page);
    const census0 = await heapCensus(cdp);
    for (let i = 1; i <= count; i++) {
      const deadline = start + i * HEAP_SAMPLE_EVERY_MS;
      const view = await visit(page, (i - 1) % 5, i);
      const sel = await scrollerOf(page);
      const left = deadline - performance.now() - 1_500;
      if (left > 200) {
        if (sel) await measureFrames(page, left, sel, 40);
        else await sleep(left);
      }
      await goHome(page);
      const wait = deadline - performance.now();
      if (wait > 0) await sleep(wait);
      samples.push({ t: (performance.now() - start) / 60_000, mb: await heapMB(cdp), view });
    }
    const minutes = (performance.now() - start) / 60_000;
    const dom1 = await cdp.send('Memory.getDOMCounters');
    const attached1 = await attachedNodes(page);
    const census1 = await heapCensus(cdp);
    const half = samples.slice(Math.floor(samples.length / 2));
    const growth = slope(
      half.map((s) => s.t),
      half.map((s) => s.mb),
    );
    const first = samples[0]!.mb;
    const last = samples.at(-1)!;
    const peak = Math.max(...samples.map((s) => s.mb));
    const runNote = `${WORKLOAD}, ${minutes.toFixed(1)} min visiting fleet → tree → device detail → system → events in turn, sampled every 10 s back in the fleet view after a forced GC`;
    report(
      SUITE,
      'heap_after_run',
      last.mb,
      'MB',
      '<=',
      HEAP_GOAL_MB,
      `JS heap in use (CDP Runtime.getHeapUsage) after ${runNote}; first sample ${first.toFixed(1)} MB, peak ${peak.toFixed(1)} MB; includes the in-page simulated fleet; ${MACHINE}`,
    );
    report(
      SUITE,
      'heap_growth_per_min',
      growth,
      'MB/min',
      '<=',
      GROWTH_GOAL_MB_PER_MIN,
      `least-squares slope over the second half (${half.length} samples, ${half[0]!.t.toFixed(1)}–${half.at(-1)!.t.toFixed(1)} min) of ${runNote}${QUICK ? '; BENCH_QUICK: 1 minute, only a few points — noisy' : ''}`,
    );
    console.log(
      `# ui.heap: samples in the fleet view (minutes MB, after visiting): ${samples.map((s) => `${s.t.toFixed(1)} ${s.mb.toFixed(1)} ${s.view.split(' ')[0]}`).join(' | ')}`,
    );
    console.log(
      `# ui.heap: DOM counters start → end: documents ${dom0.documents} → ${dom1.documents}, nodes ${dom0.nodes} → ${dom1.nodes}, listeners ${dom0.jsEventListeners} → ${dom1.jsEventListeners}; nodes in the document ${attached0} → ${attached1} (the rest are detached, not yet collected)`,
    );
    console.log(
      `# ui.heap: what grew between heap snapshots at the start and the end of the run (kind +count, self size): ${censusGrowth(census0, census1)}`,
    );
    if (errors.length > 0) console.log(`# ui: page errors: ${errors.slice(0, 5).join(' | ')}`);
  } finally {
    await browser?.close().catch(() => undefined);
    if (server) await new Promise((done) => server!.close(done));
    if (outDir) await rm(outDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
