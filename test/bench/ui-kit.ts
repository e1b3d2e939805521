/**
 * What the browser benches share (ui.bench.ts, ui-real.bench.ts): frame times collected in the
 * page with requestAnimationFrame (and the Long Animation Frames seen meanwhile), the main
 * thread's time split from CDP Performance.getMetrics, a static calibration page (the machine's
 * own scrolling baseline), and JS self time by source file from a CDP CPU profile.
 *
 * @example
 * const run = await measureFrames(page, 10_000, '[data-testid="fleet-scroll"]', 120);
 * console.log(frameSummary(run)); // p50 16.7 ms, p95 33.3 ms, max 50 ms, …
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { CDPSession, Page } from 'playwright-core';
import { percentile } from './bench-kit.js';

export const CHROMIUM = '/usr/bin/chromium';
/** A frame longer than this is a visible stutter (and a Long Animation Frame). */
export const LONG_FRAME_MS = 50;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- frames ------------------------------------------------------------------------------------
export interface LongFrame {
  duration: number;
  /** ms from the frame's start to its rendering (style/layout/paint) phase. */
  renderStart: number;
  styleAndLayout: number;
  scripts: { invoker: string; source: string; duration: number }[];
}

export interface FrameRun {
  deltas: number[];
  longFrames: LongFrame[];
  scrolled: number;
}

/**
 * Runs a rAF loop in the page for `durationMs`, recording the delta between successive frame
 * timestamps; when `scroller` is given, moves it `step` px per frame, reversing at either end.
 * Long Animation Frame entries (> 50 ms) observed meanwhile come back with their breakdown.
 */
export function measureFrames(
  page: Page,
  durationMs: number,
  scroller: string | null,
  step: number,
): Promise<FrameRun> {
  return page.evaluate(
    ({ durationMs, scroller, step }) =>
      new Promise<FrameRun>((done) => {
        const el = scroller ? (document.querySelector(scroller) as HTMLElement | null) : null;
        const deltas: number[] = [];
        const longFrames: LongFrame[] = [];
        let observer: PerformanceObserver | null = null;
        try {
          observer = new PerformanceObserver((list) => {
            for (const e of list.getEntries() as unknown as {
              duration: number;
              startTime: number;
              renderStart: number;
              styleAndLayoutStart: number;
              scripts: { invoker: string; sourceURL: string; sourceFunctionName: string; duration: number }[];
            }[])
              longFrames.push({
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
          observer.observe({ type: 'long-animation-frame', buffered: false });
        } catch {
          observer = null; // no LoAF in this browser: the deltas still tell the story
        }
        let direction = 1;
        let scrolled = 0;
        let last = -1;
        let started = -1;
        const loop = (t: number) => {
          if (started < 0) started = t;
          if (last >= 0) deltas.push(t - last);
          last = t;
          if (el) {
            const max = el.scrollHeight - el.clientHeight;
            let top = el.scrollTop + direction * step;
            if (top >= max || top <= 0) {
              direction = -direction;
              top = Math.max(0, Math.min(max, top));
            }
            el.scrollTop = top;
            scrolled += step;
          }
          if (t - started >= durationMs) {
            // Let the observer deliver the last entries before reporting.
            setTimeout(() => {
              observer?.disconnect();
              done({ deltas, longFrames, scrolled });
            }, 100);
            return;
          }
          requestAnimationFrame(loop);
        };
        requestAnimationFrame(loop);
      }),
    { durationMs, scroller, step },
  );
}

export type Metrics = Record<string, number>;

export async function metrics(cdp: CDPSession): Promise<Metrics> {
  const { metrics: list } = await cdp.send('Performance.getMetrics');
  return Object.fromEntries(list.map((m) => [m.name, m.value]));
}

/** Main-thread time split over a window, from two Performance.getMetrics readings (seconds). */
export function split(before: Metrics, after: Metrics, wallMs: number): string {
  const c = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
  const d = (k: string) => c(k) * 1000;
  const task = d('TaskDuration');
  const script = d('ScriptDuration');
  const style = d('RecalcStyleDuration');
  const layout = d('LayoutDuration');
  const other = Math.max(0, task - script - style - layout);
  const pct = (ms: number) => `${((100 * ms) / wallMs).toFixed(0)}%`;
  return (
    `main thread busy ${pct(task)} of ${(wallMs / 1000).toFixed(1)} s: script ${pct(script)}, ` +
    `style ${pct(style)}, layout ${pct(layout)}, other (paint, commit, parse, idle tasks) ${pct(other)}; ` +
    `${c('LayoutCount')} layouts, ${c('RecalcStyleCount')} style recalcs`
  );
}

export function summarizeLongFrames(longFrames: LongFrame[]): string {
  if (longFrames.length === 0) return 'no long animation frames';
  const byInvoker = new Map<string, number>();
  let render = 0;
  let total = 0;
  for (const f of longFrames) {
    total += f.duration;
    render += f.styleAndLayout;
    for (const s of f.scripts) {
      const key = `${s.invoker} [${s.source}]`;
      byInvoker.set(key, (byInvoker.get(key) ?? 0) + s.duration);
    }
  }
  const top = [...byInvoker.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
    .join('; ');
  const longest = Math.max(...longFrames.map((f) => f.duration));
  return (
    `${longFrames.length} long animation frames (LoAF > 50 ms), longest ${longest.toFixed(0)} ms, ` +
    `${total.toFixed(0)} ms in all, of which style+layout ${render.toFixed(0)} ms; scripts: ${top || 'none attributed'}`
  );
}

/** A frame time at the 0.1 ms the report prints (a vsync, 16.67 ms, reads as 16.7). */
export const ms01 = (v: number) => Math.round(v * 10) / 10;

export function frameSummary(run: FrameRun): string {
  const sorted = [...run.deltas].sort((a, b) => a - b);
  const fps = (1000 * run.deltas.length) / run.deltas.reduce((a, b) => a + b, 0);
  return (
    `p50 ${ms01(percentile(sorted, 50))} ms, p95 ${ms01(percentile(sorted, 95))} ms, max ${sorted.at(-1)?.toFixed(0)} ms, ` +
    `${run.deltas.filter((d) => d > LONG_FRAME_MS).length} > ${LONG_FRAME_MS} ms of ${run.deltas.length} frames, ${fps.toFixed(1)} fps`
  );
}

/** A static page with `count` plain rows in a scroller `#s`, for the machine's own scrolling baseline. */
export function calibrationPage(count: number): string {
  const rows: string[] = [];
  for (let i = 0; i < count; i++)
    rows.push(
      `<div class="r"><span>dev-${i}</span><span>Device ${i} · hall</span><span>acme.pump</span><span>connected</span><span>mqtt</span><span>1.5.0</span><span>${i % 60} s ago</span></div>`,
    );
  return `<!doctype html><meta charset="utf-8"><style>body{margin:0;font:13px system-ui}#s{height:800px;overflow:auto}.r{height:28px;display:flex;gap:12px;align-items:center;border-bottom:1px solid #ddd}.r span{width:130px;overflow:hidden;white-space:nowrap}</style><div id="s">${rows.join('')}</div>`;
}

// ---- CPU profile attribution -------------------------------------------------------------------

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export type SourceLookup = (url: string, line: number, column: number) => string | null;

export interface MapConsumer {
  originalPositionFor(p: { line: number; column: number }): { source: string | null; line: number | null };
}
export type MapConsumerClass = new (map: unknown) => MapConsumer;

/**
 * Maps a bundle position to its source file through the build's source maps, with source-map-js
 * (vite's own dependency) when it loads; else to the chunk's file name.
 */
export async function sourceLookup(outDir: string): Promise<SourceLookup> {
  const Consumer: MapConsumerClass | null = await import('source-map-js').then(
    (m) => (m as unknown as { SourceMapConsumer: MapConsumerClass }).SourceMapConsumer,
    () => null,
  );
  const consumers = new Map<string, MapConsumer | null>();
  const assets = join(outDir, 'assets');
  const files = new Set(await readdir(assets).catch(() => [] as string[]));
  return (url, line, column) => {
    const file = url.split('/').pop() ?? '';
    if (!file.endsWith('.js')) return null;
    if (!consumers.has(file)) {
      let consumer: MapConsumer | null = null;
      if (Consumer && files.has(`${file}.map`)) {
        try {
          // Read once per chunk: the maps are few.
          const raw = JSON.parse(readFileSync(join(assets, `${file}.map`), 'utf8'));
          consumer = new Consumer(raw);
        } catch {
          consumer = null;
        }
      }
      consumers.set(file, consumer);
    }
    const consumer = consumers.get(file);
    if (!consumer) return file;
    const original = consumer.originalPositionFor({ line: line + 1, column });
    const source = original.source;
    if (!source) return file;
    const nm = source.lastIndexOf('node_modules/');
    if (nm >= 0)
      return source
        .slice(nm + 'node_modules/'.length)
        .split('/')
        .slice(0, 1)
        .join('/');
    const src = source.indexOf('src/');
    return `${src >= 0 ? source.slice(src) : source}:${original.line ?? '?'}`;
  };
}

/** Self time by source file over a CPU profile: where the page's JavaScript time goes. */
export async function profileAttribution(
  cdp: CDPSession,
  lookup: SourceLookup,
  during: () => Promise<unknown>,
): Promise<string> {
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
  await cdp.send('Profiler.start');
  await during();
  const { profile } = (await cdp.send('Profiler.stop')) as unknown as { profile: Profile };
  await cdp.send('Profiler.disable');
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byNode.get(profile.samples[i]!);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    if (!node) continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const key = url ? (lookup(url, lineNumber, columnNumber) ?? url) : functionName || '(native)';
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `${k} ${((100 * v) / total).toFixed(1)}%`)
    .join(', ');
}
