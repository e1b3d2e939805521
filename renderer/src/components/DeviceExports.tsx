/**
 * One device's history as files, under its charts: telemetry over the chart window (every point,
 * or averaged per bucket with min, max and count), and its events and commands (all stored), as
 * CSV through `GET /api/export/…` (renderer/src/lib/export-download.ts), or in the desktop shell
 * saved to a file picked in a save dialog.
 *
 * @example
 * <DeviceExports id="pump-7" windowMs={3_600_000} />
 */
import { useState } from 'react';
import type { ExportKind, ExportParams } from '../lib/export-download.js';
import { downloadExport, exportAvailable } from '../lib/export-download.js';

/** Buckets for the downsampled file: about 60 to 300 of them over the chart's window. */
export function bucketSecondsFor(windowMs: number): number {
  if (windowMs <= 5 * 60_000) return 5;
  if (windowMs <= 3_600_000) return 60;
  return 300;
}

export function DeviceExports({ id, windowMs }: { readonly id: string; readonly windowMs: number }) {
  const [state, setState] = useState<{ busy: boolean; error: string }>({ busy: false, error: '' });
  if (!exportAvailable()) return null;
  const bucket = bucketSecondsFor(windowMs);
  const since = () => String(Date.now() - windowMs);
  const items: { label: string; kind: ExportKind; params: () => ExportParams; testId: string }[] = [
    { label: 'Telemetry', kind: 'telemetry', params: () => ({ device: id, from: since() }), testId: 'raw' },
    {
      label: `Telemetry, ${bucket} s buckets`,
      kind: 'telemetry',
      params: () => ({ device: id, from: since(), bucket: String(bucket) }),
      testId: 'buckets',
    },
    { label: 'Events', kind: 'events', params: () => ({ device: id }), testId: 'events' },
    { label: 'Commands', kind: 'commands', params: () => ({ device: id }), testId: 'commands' },
  ];
  const run = async (kind: ExportKind, params: ExportParams) => {
    setState({ busy: true, error: '' });
    const r = await downloadExport(kind, { ...params, format: 'csv' });
    setState({ busy: false, error: r.ok ? '' : r.message });
  };
  return (
    <div
      className="device-exports small-text"
      data-testid="device-exports"
      style={{ display: 'flex', flexWrap: 'wrap', alignItems: 'center', gap: 6, marginTop: 8 }}
    >
      <span className="muted" title="Telemetry over the chart window; events and commands all stored">
        Download CSV:
      </span>
      {items.map((item) => (
        <button
          key={item.testId}
          type="button"
          className="btn small ghost"
          disabled={state.busy}
          onClick={() => void run(item.kind, item.params())}
          data-testid={`device-export-${item.testId}`}
        >
          ⤓ {item.label}
        </button>
      ))}
      {state.busy ? <span className="muted">Exporting…</span> : null}
      {state.error ? (
        <span className="tone-text-err" role="alert">
          {state.error}
        </span>
      ) : null}
    </div>
  );
}
