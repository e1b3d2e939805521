/**
 * One metric of several devices on one uPlot chart over the last hour: each device's history from
 * the host (`telemetry`, the same 30 s buckets for all, at most 4 calls in flight), then its live
 * points from the push stream, redrawn at most once a second. A legend names each device in its
 * colour with its latest value (the hovered one while the cursor is on the chart) and the unit;
 * the y axis carries the unit too. Clicking a legend entry hides or shows that line.
 *
 * @example
 * <MultiDeviceChart ids={['pump-1', 'pump-2']} metric="temp" />
 */
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Bucket } from '../../../src/host/contract.js';
import type { SeriesInput } from '../lib/fleet-chart.js';
import { alignSeries, CHART_BUCKETS, CHART_WINDOW_MS, colourOf, lastValue } from '../lib/fleet-chart.js';
import { formatTime, unitOf } from '../lib/format.js';
import { cssVar, useDarkMode } from '../lib/hooks.js';
import type { SeriesRing } from '../store/ring-buffer.js';
import { useClient, useStore } from '../store/use-live.js';
import './fleet-tools.css';

const HEIGHT = 260;
const REDRAW_EVERY_MS = 1_000;
const HISTORY_CONCURRENCY = 4;

type Status = 'loading' | 'ok' | 'empty' | 'error';

interface LegendEntry {
  readonly id: string;
  readonly colour: string;
  readonly value: number | null;
  readonly shown: boolean;
}

export function MultiDeviceChart({
  ids,
  metric,
}: {
  readonly ids: readonly string[];
  readonly metric: string;
}) {
  const unit = unitOf(metric);
  const client = useClient();
  const store = useStore();
  const dark = useDarkMode();
  const hostRef = useRef<HTMLDivElement>(null);
  const chartRef = useRef<uPlot | null>(null);
  const [status, setStatus] = useState<Status>('loading');
  const [failures, setFailures] = useState<string[]>([]);
  const [legend, setLegend] = useState<LegendEntry[]>([]);
  const [hoverAt, setHoverAt] = useState<number | null>(null);
  const key = ids.join('\u0000');

  // biome-ignore lint/correctness/useExhaustiveDependencies: `key` stands for the ids' contents; a theme change rebuilds the chart with its colours
  useEffect(() => {
    const host = hostRef.current;
    if (!host) return;
    let disposed = false;
    const openedAt = Date.now();
    const bucketMs = CHART_WINDOW_MS / CHART_BUCKETS;
    // Bucket starts the host computes from this `from`: every device's line up.
    const grid = { from: openedAt - CHART_WINDOW_MS, bucketMs };
    const histories: Bucket[][] = ids.map(() => []);
    const rings: SeriesRing[] = [];
    let dirty = false;
    const watches = ids.map((id, i) => {
      const w = store.watchSeries(id, metric, () => {
        dirty = true;
      });
      rings[i] = w.series;
      return w;
    });
    setStatus('loading');
    setFailures([]);
    setHoverAt(null);

    const compose = () => {
      const inputs: SeriesInput[] = ids.map((_, i) => {
        const [times, values] = rings[i]!.columns();
        return { history: histories[i]!, times, values };
      });
      return alignSeries(grid, Date.now(), CHART_WINDOW_MS, inputs);
    };

    const showLegend = (data: ReturnType<typeof compose>, index: number | null) => {
      setLegend((old) =>
        ids.map((id, i) => {
          const column = data[i + 1]!;
          return {
            id,
            colour: colourOf(i),
            value: index === null ? lastValue(column) : (column[index] ?? null),
            shown: old.find((e) => e.id === id)?.shown ?? true,
          };
        }),
      );
      setHoverAt(index === null ? null : (data[0][index] ?? 0) * 1000);
    };

    const draw = () => {
      const data = compose();
      const hasData = data.slice(1).some((c) => c.some((v) => v !== null));
      const muted = cssVar('--muted') || '#667';
      const gridColour = cssVar('--grid') || 'rgba(128,128,128,0.15)';
      const axis: uPlot.Axis = {
        stroke: muted,
        grid: { stroke: gridColour, width: 1 },
        ticks: { stroke: gridColour, width: 1, size: 4 },
        font: '11px system-ui, sans-serif',
        labelFont: '11px system-ui, sans-serif',
      };
      chartRef.current = new uPlot(
        {
          width: Math.max(300, host.clientWidth),
          height: HEIGHT,
          legend: { show: false },
          cursor: { y: false, points: { size: 5 } },
          scales: { x: { time: true } },
          series: [
            {},
            ...ids.map((id, i) => ({
              label: id,
              stroke: colourOf(i),
              width: 1.5,
              spanGaps: true,
              points: { show: false },
            })),
          ],
          axes: [
            { ...axis, space: 60, values: (_u, splits) => splits.map((sec) => formatTick(sec * 1000)) },
            { ...axis, size: 56, label: unit || metric, labelSize: 16 },
          ],
          hooks: {
            setCursor: [
              (u) => {
                const idx = u.cursor.idx;
                showLegend(u.data as unknown as ReturnType<typeof compose>, idx ?? null);
              },
            ],
          },
        },
        data as uPlot.AlignedData,
        host,
      );
      host.parentElement?.setAttribute('data-series', String(ids.length));
      showLegend(data, null);
      setStatus(hasData ? 'ok' : 'empty');
    };

    void (async () => {
      const toMs = openedAt;
      const failed: string[] = [];
      let next = 0;
      const worker = async () => {
        while (!disposed && next < ids.length) {
          const i = next++;
          try {
            const r = await client.call('telemetry', {
              id: ids[i]!,
              metric,
              fromMs: grid.from,
              toMs,
              buckets: CHART_BUCKETS,
            });
            if (r.ok) histories[i] = [...r.value];
            else failed.push(`${ids[i]}: ${r.error.message}`);
          } catch (e) {
            failed.push(`${ids[i]}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(HISTORY_CONCURRENCY, ids.length) }, worker));
      if (disposed) return;
      setFailures(failed);
      if (failed.length === ids.length && ids.length > 0) setStatus('error');
      draw();
    })();

    const timer = setInterval(() => {
      const chart = chartRef.current;
      if (!chart || !dirty) return;
      dirty = false;
      const data = compose();
      chart.setData(data as uPlot.AlignedData, true);
      if (chart.cursor.idx === null || chart.cursor.idx === undefined) showLegend(data, null);
      if (data.slice(1).some((c) => c.some((v) => v !== null))) setStatus('ok');
    }, REDRAW_EVERY_MS);
    const resize = new ResizeObserver(() =>
      chartRef.current?.setSize({ width: Math.max(300, host.clientWidth), height: HEIGHT }),
    );
    resize.observe(host);
    return () => {
      disposed = true;
      clearInterval(timer);
      resize.disconnect();
      for (const w of watches) w.stop();
      chartRef.current?.destroy();
      chartRef.current = null;
    };
  }, [client, store, key, metric, dark]);

  const toggle = (index: number) => {
    const entry = legend[index];
    if (!entry) return;
    chartRef.current?.setSeries(index + 1, { show: !entry.shown });
    setLegend(legend.map((e, i) => (i === index ? { ...e, shown: !e.shown } : e)));
  };

  return (
    <figure
      className="chart multi-chart"
      data-testid="fleet-chart"
      data-metric={metric}
      data-unit={unit}
      data-status={status}
    >
      <div className="chart-host" ref={hostRef} />
      {status === 'loading' ? <div className="chart-overlay muted">Loading…</div> : null}
      {status === 'empty' ? (
        <div className="chart-overlay muted">No {metric} from these devices in the last hour</div>
      ) : null}
      {status === 'error' ? (
        <div className="chart-overlay tone-text-err">Could not load: {failures[0] ?? 'unknown error'}</div>
      ) : null}
      <figcaption className="chart-legend" data-testid="fleet-chart-legend">
        <span className="muted small-text legend-when">
          {hoverAt === null ? 'latest' : formatTime(hoverAt).slice(0, 8)}
        </span>
        {legend.map((e, i) => (
          <button
            key={e.id}
            type="button"
            className={`legend-entry${e.shown ? '' : ' off'}`}
            onClick={() => toggle(i)}
            title={e.shown ? `Hide ${e.id}` : `Show ${e.id}`}
            data-testid="fleet-chart-series"
            data-device-id={e.id}
          >
            <span className="legend-swatch" style={{ background: e.colour }} />
            <span className="mono">{e.id}</span>
            <span className="legend-value mono">
              {e.value === null ? '—' : formatChartValue(e.value)}
              {e.value !== null && unit ? ` ${unit}` : ''}
            </span>
          </button>
        ))}
      </figcaption>
      {failures.length > 0 && status !== 'error' ? (
        <p className="tone-text-warn small-text">
          No history for {failures.length} of {ids.length}: {failures.slice(0, 3).join('; ')}
        </p>
      ) : null}
    </figure>
  );
}

/** `14:05`, as the device charts say it. */
function formatTick(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function formatChartValue(v: number): string {
  const abs = Math.abs(v);
  return v.toLocaleString('en-US', { maximumFractionDigits: abs >= 1000 ? 0 : abs >= 100 ? 1 : 2 });
}
