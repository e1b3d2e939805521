/**
 * Coloured badges for a device's state, a process status and a link, so the same word has the
 * same colour in every view. The text is the device's own string, rendered as text.
 *
 * @example
 * <StateBadge state="updating.verify" health="running" />
 */
import type { DeviceRow, ProcessStatus } from '../../../src/host/contract.js';

export type Tone = 'ok' | 'warn' | 'err' | 'info' | 'idle';

export function toneOfState(state: string, health: DeviceRow['health'] = 'running'): Tone {
  if (health === 'failed') return 'err';
  if (health === 'stopped') return 'idle';
  if (state === 'connected') return 'ok';
  if (state.startsWith('updating')) return 'info';
  if (state === 'connecting') return 'warn';
  if (state === 'disconnected') return 'idle';
  if (/fail|error|stuck/i.test(state)) return 'err';
  return 'info';
}

export function toneOfStatus(status: ProcessStatus): Tone {
  switch (status) {
    case 'running':
      return 'ok';
    case 'restarting':
      return 'warn';
    case 'failed':
      return 'err';
    default:
      return 'idle';
  }
}

export function StateBadge({
  state,
  health,
  testId = 'device-state',
}: {
  readonly state: string;
  readonly health?: DeviceRow['health'];
  readonly testId?: string;
}) {
  const label = health === 'failed' ? `failed · ${state}` : state;
  return (
    <span
      className={`badge tone-${toneOfState(state, health)}`}
      data-testid={testId}
      data-state={state}
      title={label}
    >
      {label}
    </span>
  );
}

export function StatusDot({ status }: { readonly status: ProcessStatus }) {
  return <span className={`dot tone-${toneOfStatus(status)}`} role="img" aria-label={status} />;
}

export function LinkBadge({ link }: { readonly link: DeviceRow['link'] }) {
  return (
    <span className={`link ${link.up ? 'up' : 'down'}`} title={link.reason ?? undefined}>
      <span className={`dot tone-${link.up ? 'ok' : 'idle'}`} aria-hidden="true" />
      {link.up ? 'up' : 'down'}
      {link.via ? (
        <span className="muted link-via" title={link.via}>
          · {link.via}
        </span>
      ) : null}
    </span>
  );
}
