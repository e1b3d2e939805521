/**
 * The host's bulk adoption in the Discovered view (renderer/src/views/DiscoveredView.tsx), one
 * job's line: what it selects, who started it and when, whether it resumed after a host restart,
 * progress done/total with failures by code (each failed id opens its device), how many devices it
 * waits to hear from again, and Cancel while it runs; its result once it ended, until closed.
 *
 * @example
 * <AdoptJob job={job} onCancel={cancel} onClose={() => dismissJob(job.id)} onOpen={openDevice} />
 */
import type { AdoptBulkView } from '../../../src/host/contract.js';
import { adoptJobSelection, adoptJobSummary } from '../lib/discovered.js';
import { formatDateTime } from '../lib/format.js';

/** The host's bulk adoption: progress while it runs (with Cancel), its result once it ended. */
export function AdoptJob({
  job,
  onCancel,
  onClose,
  onOpen,
}: {
  readonly job: AdoptBulkView;
  readonly onCancel: () => void;
  readonly onClose: () => void;
  readonly onOpen: (id: string) => void;
}) {
  const running = job.state === 'running';
  const fraction = job.total > 0 ? job.done / job.total : 1;
  const n = (x: number) => x.toLocaleString('en-US');
  const title = running ? 'Adopting' : job.state === 'cancelled' ? 'Adoption cancelled' : 'Adoption finished';
  return (
    <section
      className="act-results adopt-job"
      aria-label="Bulk adoption"
      data-testid="adopt-job"
      data-state={job.state}
      data-job-id={job.id}
    >
      <header>
        <strong>{title}</strong>&nbsp;
        <span className="muted">
          {adoptJobSelection(job)} · started by {job.startedBy} {formatDateTime(job.startedAt)}
          {job.resumedAt !== undefined ? (
            <span data-testid="adopt-job-resumed">
              {' '}
              · resumed after a host restart {formatDateTime(job.resumedAt)}
            </span>
          ) : null}
          {job.finishedAt !== null ? ` · ended ${formatDateTime(job.finishedAt)}` : ''}
          {job.cancelledBy ? ` · cancelled by ${job.cancelledBy}` : ''}
        </span>
        {running ? (
          <button type="button" className="btn small" onClick={onCancel} data-testid="adopt-job-cancel">
            Cancel
          </button>
        ) : (
          <button type="button" className="btn ghost small" onClick={onClose} aria-label="Close result">
            ✕
          </button>
        )}
      </header>
      <div className="fw-progress adopt-job-progress">
        <div
          className="bar"
          role="progressbar"
          aria-label="Devices adopted"
          aria-valuemin={0}
          aria-valuemax={job.total}
          aria-valuenow={job.done}
        >
          <div
            className={`bar-fill${job.failed > 0 ? ' tone-err' : job.state === 'finished' ? ' tone-ok' : ''}`}
            style={{ transform: `scaleX(${fraction})` }}
          />
        </div>
        <span className="fw-progress-text" data-testid="adopt-job-progress">
          <strong>
            {n(job.done)} / {n(job.total)}
          </strong>{' '}
          <span className={job.failed > 0 ? 'tone-text-err' : 'muted'} data-testid="adopt-job-result">
            {adoptJobSummary(job)}
          </span>
          {running && (job.waiting ?? 0) > 0 ? (
            <span className="muted" data-testid="adopt-job-waiting">
              {' '}
              · waiting for {n(job.waiting ?? 0)} to be heard again after the restart
            </span>
          ) : null}
        </span>
      </div>
      {job.failures.length > 0 ? (
        <ul>
          {job.failures.map((f) => (
            <li key={f.code} className="err" data-testid="adopt-job-failure" data-code={f.code}>
              <span className="dot tone-err" aria-hidden="true" />
              <span className="mono">{f.code}</span>
              <span>× {n(f.count)}</span>
              <span className="result-text" title={f.message}>
                {f.message}
              </span>
              {f.ids.map((id) => (
                <button key={id} type="button" className="linklike mono" onClick={() => onOpen(id)}>
                  {id}
                </button>
              ))}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
