/**
 * What each device answered to an action: one line per device, followed live until its command
 * ends — the status (succeeded, failed, timedOut, …), the round trip, the device's reply or the
 * failure's reason, and the command's id (one format everywhere). Refusals (the host did not send
 * it) come first, then failures, then the rest; a summary counts each.
 *
 * @example
 * <ActResults action="reboot" results={results} onOpen={(id) => openDevice(id)} onClose={clear} />
 */
import { useMemo } from 'react';
import type { ActResult, CommandView } from '../../../src/host/contract.js';
import type { CommandRef } from '../lib/commands.js';
import { describeCommand, formatCommandId, toneOf, useCommandOutcomes } from '../lib/commands.js';

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
  const refs = useMemo(
    () =>
      results.flatMap((r): CommandRef[] =>
        r.ok && r.commandId ? [{ deviceId: r.id, commandId: r.commandId }] : [],
      ),
    [results],
  );
  const outcomes = useCommandOutcomes(refs);
  const lines = results.map((r) => line(r, r.commandId ? outcomes.get(r.commandId) : undefined));
  const rank = (l: Line) => (l.status === 'refused' ? 0 : l.tone === 'err' ? 1 : l.tone === 'warn' ? 2 : 3);
  const ordered = [...lines].sort((a, b) => rank(a) - rank(b));
  const count = (pred: (l: Line) => boolean) => lines.filter(pred).length;
  const refused = count((l) => l.status === 'refused');
  const failed = count((l) => l.status !== 'refused' && l.tone === 'err');
  const waiting = count((l) => l.tone === 'warn');
  const done = count((l) => l.tone === 'ok');
  return (
    <section className="act-results" aria-label={`Results of ${action}`}>
      <header>
        <strong>{action}</strong>
        {error ? (
          <span className="tone-text-err"> failed: {error}</span>
        ) : (
          <span data-testid="act-summary">
            {' '}
            — <span className="tone-text-ok">{done} succeeded</span>
            {failed > 0 ? <span className="tone-text-err"> · {failed} failed</span> : null}
            {refused > 0 ? <span className="tone-text-err"> · {refused} refused</span> : null}
            {waiting > 0 ? <span className="tone-text-warn"> · {waiting} waiting</span> : null}
          </span>
        )}
        <button type="button" className="btn ghost small" onClick={onClose} aria-label="Close results">
          ✕
        </button>
      </header>
      <ul>
        {ordered.map((l) => (
          <li
            key={l.id}
            data-testid="act-result"
            data-device-id={l.id}
            data-ok={l.ok}
            data-status={l.status}
            className={l.tone === 'err' ? 'err' : 'ok'}
          >
            <span className={`dot tone-${l.tone}`} aria-hidden="true" />
            <button type="button" className="linklike mono" onClick={() => onOpen(l.id)}>
              {l.id}
            </button>
            {l.commandId ? (
              <span className="mono muted command-id" title={l.commandId} data-testid="command-id">
                {formatCommandId(l.commandId)}
              </span>
            ) : null}
            <span className={`badge small tone-${l.tone}`}>{l.status}</span>
            <span className="result-text">{l.text}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

interface Line {
  readonly id: string;
  readonly ok: boolean;
  readonly commandId: string | undefined;
  readonly status: string;
  readonly tone: 'ok' | 'err' | 'warn' | 'muted';
  readonly text: string;
}

function line(r: ActResult, command: CommandView | undefined): Line {
  const base = { id: r.id, ok: r.ok, commandId: r.commandId };
  if (!r.ok)
    return {
      ...base,
      status: 'refused',
      tone: 'err',
      text: `${r.error?.code ?? 'error'}: ${r.error?.message ?? ''}`,
    };
  if (command) {
    const { status, text } = describeCommand(command);
    return { ...base, status, tone: toneOf(status), text };
  }
  // Not (yet) in the command log: what the act call said.
  const status = r.commandStatus ?? (r.commandId ? 'sent' : 'succeeded');
  return {
    ...base,
    status,
    tone: toneOf(status),
    text: [r.state ? `→ ${r.state}` : '', status === 'sent' ? 'waiting for the answer…' : '']
      .filter(Boolean)
      .join(' · '),
  };
}
