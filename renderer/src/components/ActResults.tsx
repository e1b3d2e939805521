/**
 * What each device answered to an action: one line per device (ok with the new state or the
 * command's id and status, or the error's code and message), failures first, with a summary.
 *
 * @example
 * <ActResults action="reboot" results={results} onOpen={(id) => openDevice(id)} onClose={clear} />
 */
import type { ActResult } from '../../../src/host/contract.js';

export function ActResults({
  action,
  results,
  error,
  onOpen,
  onClose,
}: {
  readonly action: string;
  readonly results: readonly ActResult[];
  /** The whole call failed (no per-device answers). */
  readonly error?: string | undefined;
  readonly onOpen: (id: string) => void;
  readonly onClose: () => void;
}) {
  const failed = results.filter((r) => !r.ok);
  const ordered = [...failed, ...results.filter((r) => r.ok)];
  return (
    <section className="act-results" aria-label={`Results of ${action}`}>
      <header>
        <strong>{action}</strong>
        {error ? (
          <span className="tone-text-err"> failed: {error}</span>
        ) : (
          <span>
            {' '}
            — <span className="tone-text-ok">{results.length - failed.length} ok</span>
            {failed.length > 0 ? <span className="tone-text-err"> · {failed.length} failed</span> : null}
          </span>
        )}
        <button type="button" className="btn ghost small" onClick={onClose} aria-label="Close results">
          ✕
        </button>
      </header>
      <ul>
        {ordered.map((r) => (
          <li
            key={r.id}
            data-testid="act-result"
            data-device-id={r.id}
            data-ok={r.ok}
            className={r.ok ? 'ok' : 'err'}
          >
            <span className={`dot tone-${r.ok ? 'ok' : 'err'}`} aria-hidden="true" />
            <button type="button" className="linklike mono" onClick={() => onOpen(r.id)}>
              {r.id}
            </button>
            <span className="result-text">
              {r.ok
                ? [
                    r.state ? `→ ${r.state}` : '',
                    r.commandId ? `command ${r.commandId}` : '',
                    r.commandStatus ?? '',
                  ]
                    .filter(Boolean)
                    .join(' · ') || 'ok'
                : `${r.error?.code ?? 'error'}: ${r.error?.message ?? ''}`}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}
