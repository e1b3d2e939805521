/**
 * One device metric over a window (5 min, 1 h, 24 h) as a uPlot chart: the host's downsampled
 * history (`telemetry` call: avg line inside a min–max band), then the live points from the push
 * stream appended as they arrive (at most once per frame, from the store's bounded ring). Colours
 * follow the light/dark theme; the header shows the latest value, or the hovered one.
 *
 * @example
 * <TelemetryChart deviceId="pump-7" metric="flow" windowMs={300_000} />
 */
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Bucket, Envelope } from '../../../src/host/contract.js';
import { formatTime, unitOf } from '../lib/format.js';
import { cssVar, useDarkMode } from '../lib/hooks.js';
import { useClient, useStore } from '../store/use-live.js';
import { ExportButtons } from './ExportButtons.js';

const BUCKETS = 300;
const HEIGHT = 150;

type Columns = [number[], (number | null)[], (number | null)[], (number | null)[]];

export function TelemetryChart({
  deviceId,
  metric,
  windowMs,
}: {
  readonly deviceId: string;
  readonly metric: string;
  readonly windowMs: number;
}) {
  const unit = unitOf(metric);
  const client = useClient();
  const store = useStore();
  const dark = useDarkMode();
  const hostRef = useRef<HTMLDivElement>(null);
  const valueRef = useRef<HTMLSpanElement>(null);
  const [status, setStatus] = useState<'loading' | 'ok' | 'empty' | 'error'>('loading');
  const [error, setError] = useState('');

  // biome-ignore lint/correctness/useExhaustiveDependencies: a theme change rebuilds the chart with the new colours
  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    let disposed = false;
    let chart: uPlot | null = null;
    let history: Bucket[] = [];
    setStatus('loading');

    const compose = (liveTimes: number[], liveValues: number[]): Columns => {
      const now = Date.now();
      const from = now - windowMs;
      const x: number[] = [];
      const avg: (number | null)[] = [];
      const min: (number | null)[] = [];
      const max: (number | null)[] = [];
      const bucketMs = windowMs / BUCKETS;
      let lastX = Number.NEGATIVE_INFINITY;
      for (const b of history) {
        const at = b.start + bucketMs / 2;
        if (at < from) continue;
        x.push(at / 1000);
        avg.push(b.avg);
        min.push(b.min);
        max.push(b.max);
        lastX = b.start + bucketMs;
      }
      for (let i = 0; i < liveTimes.length; i++) {
        const at = liveTimes[i]!;
        if (at <= lastX || at < from) continue;
        const v = liveValues[i]!;
        x.push(at / 1000);
        avg.push(v);
        min.push(v);
        max.push(v);
      }
      return [x, avg, min, max];
    };

    const showValue = (data: Columns, index: number | null) => {
      const el = valueRef.current;
      if (!el) return;
      const i = index ?? data[0].length - 1;
      const v = data[1][i];
      if (i < 0 || v === null || v === undefined) {
        el.textContent = '';
        return;
      }
      const suffix = unitOf(metric) ? ` ${unitOf(metric)}` : '';
      el.textContent = `${formatValue(v)}${suffix}${index === null ? '' : ` at ${formatTime(data[0][i]! * 1000)}`}`;
    };

    const watch = store.watchSeries(deviceId, metric, (series) => {
      if (!chart) return;
      const [t, v] = series.columns();
      const data = compose(t, v);
      chart.setData(data as uPlot.AlignedData, true);
      // For tests and for the curious: how many points the chart holds now.
      host.parentElement?.setAttribute('data-points', String(data[0].length));
      showValue(data, null);
      if (data[0].length > 0) setStatus('ok');
    });

    void (async () => {
      const toMs = Date.now();
      let result: Envelope<readonly Bucket[]>;
      try {
        result = await client.call('telemetry', {
          id: deviceId,
          metric,
          fromMs: toMs - windowMs,
          toMs,
          buckets: BUCKETS,
        });
      } catch (e) {
        result = {
          ok: false,
          error: { code: 'unavailable', message: e instanceof Error ? e.message : String(e) },
        };
      }
      if (disposed) return;
      if (!result.ok) {
        setStatus('error');
        setError(result.error.message);
        return;
      }
      history = [...result.value].sort((a, b) => a.start - b.start);
      const [t, v] = watch.series.columns();
      const data = compose(t, v);
      const accent = cssVar('--accent') || '#2563eb';
      const muted = cssVar('--muted') || '#667';
      const grid = cssVar('--grid') || 'rgba(128,128,128,0.15)';
      const band = cssVar('--accent-soft') || 'rgba(37,99,235,0.15)';
      const axis: uPlot.Axis = {
        stroke: muted,
        grid: { stroke: grid, width: 1 },
        ticks: { stroke: grid, width: 1, size: 4 },
        font: '11px system-ui, sans-serif',
      };
      chart = new uPlot(
        {
          width: Math.max(200, host.clientWidth),
          height: HEIGHT,
          legend: { show: false },
          cursor: { y: false, points: { size: 6 } },
          scales: { x: { time: true } },
          series: [
            {},
            { label: metric, stroke: accent, width: 1.5, points: { show: false } },
            { label: 'min', stroke: 'transparent', points: { show: false } },
            { label: 'max', stroke: 'transparent', points: { show: false } },
          ],
          bands: [{ series: [3, 2], fill: band }],
          axes: [
            { ...axis, space: 50, values: (_u, splits) => splits.map((s) => formatTick(s * 1000, windowMs)) },
            { ...axis, size: 48, values: (_u, splits) => splits.map((s) => formatValue(s)) },
          ],
          hooks: {
            setCursor: [
              (u) => {
                const idx = u.cursor.idx;
                showValue(u.data as unknown as Columns, idx === undefined || idx === null ? null : idx);
              },
            ],
          },
        },
        data as uPlot.AlignedData,
        host,
      );
      host.parentElement?.setAttribute('data-points', String(data[0].length));
      showValue(data, null);
      setStatus(data[0].length > 0 ? 'ok' : 'empty');
    })();

    const resize = new ResizeObserver(() =>
      chart?.setSize({ width: Math.max(200, host.clientWidth), height: HEIGHT }),
    );
    resize.observe(host);
    return () => {
      disposed = true;
      resize.disconnect();
      watch.stop();
      chart?.destroy();
      chart = null;
    };
  }, [client, store, deviceId, metric, windowMs, dark]);

  return (
    <figure
      className="chart"
      data-testid="telemetry-chart"
      data-metric={metric}
      data-unit={unit}
      data-status={status}
    >
      <figcaption>
        <span>
          <span className="mono">{metric}</span>
          {unit ? <span className="muted chart-unit"> ({unit})</span> : null}
        </span>
        <span className="chart-value mono" ref={valueRef} />
        <ExportButtons
          kind="telemetry"
          formats={['csv']}
          label="Download data"
          title="This chart's points (raw, every one in the window) as CSV"
          testId="chart-download"
          params={() => ({ device: deviceId, metric, from: String(Date.now() - windowMs) })}
        />
      </figcaption>
      <div className="chart-host" ref={hostRef} />
      {status === 'loading' ? <div className="chart-overlay muted">Loading…</div> : null}
      {status === 'empty' ? <div className="chart-overlay muted">No data in this window</div> : null}
      {status === 'error' ? <div className="chart-overlay tone-text-err">Could not load: {error}</div> : null}
    </figure>
  );
}

/** `14:05` (`14:05:30` between minutes in short windows); the date on midnight's tick in a day-long one. */
function formatTick(ms: number, windowMs: number): string {
  const d = new Date(ms);
  const hm = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  if (windowMs <= 10 * 60_000 && d.getSeconds() !== 0)
    return `${hm}:${String(d.getSeconds()).padStart(2, '0')}`;
  if (windowMs >= 86_400_000 && d.getHours() === 0 && d.getMinutes() === 0)
    return `${d.getMonth() + 1}/${d.getDate()}`;
  return hm;
}

function formatValue(v: number): string {
  const abs = Math.abs(v);
  if (abs >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  return v.toFixed(2);
}
