/**
 * "Export" buttons for a view's current data: one per format, each a download of
 * `GET /api/export/<kind>` with the view's filter (renderer/src/lib/export-download.ts). Shows
 * "Exporting…" meanwhile and the server's reason when it refuses. Inside the desktop shell the
 * same export is saved to a file picked in a save dialog (electron/export-to-file.ts).
 *
 * @example
 * <ExportButtons kind="events" params={() => ({ device: 'pump-7', from: String(Date.now() - 3_600_000) })} />
 */
import { useState } from 'react';
import type { ExportKind, ExportParams } from '../lib/export-download.js';
import { downloadExport, exportAvailable } from '../lib/export-download.js';

const LABELS = { csv: 'CSV', jsonl: 'JSON Lines' } as const;

export function ExportButtons({
  kind,
  params,
  formats = ['csv', 'jsonl'],
  label = 'Export',
  title,
  testId = 'export',
}: {
  readonly kind: ExportKind;
  /** Read at the click, so a time range ends now. */
  readonly params: () => ExportParams;
  readonly formats?: readonly ('csv' | 'jsonl')[];
  readonly label?: string;
  readonly title?: string;
  readonly testId?: string;
}) {
  const [state, setState] = useState<{ busy: boolean; error: string }>({ busy: false, error: '' });
  if (!exportAvailable()) return null;
  const run = async (format: 'csv' | 'jsonl') => {
    setState({ busy: true, error: '' });
    const r = await downloadExport(kind, { ...params(), format });
    setState({ busy: false, error: r.ok ? '' : r.message });
  };
  const single = formats.length === 1;
  return (
    <span
      className="export-buttons"
      role="group"
      aria-label={label}
      title={title}
      data-testid={testId}
      style={{ display: 'inline-flex', alignItems: 'center', gap: 6 }}
    >
      {single ? null : <span className="muted small-text">{label}</span>}
      {formats.map((f) => (
        <button
          key={f}
          type="button"
          className={single ? 'btn small ghost' : 'btn small'}
          disabled={state.busy}
          onClick={() => void run(f)}
          data-testid={`${testId}-${f}`}
        >
          {single ? `⤓ ${label}` : LABELS[f]}
        </button>
      ))}
      {state.busy ? <span className="muted small-text">Exporting…</span> : null}
      {state.error ? (
        <span className="tone-text-err small-text" role="alert">
          {state.error}
        </span>
      ) : null}
    </span>
  );
}
