/**
 * The header's connection line: whether this window hears the host (connecting, connected,
 * reconnecting with the reason and when it tries next) and whether the host hears its devices (the broker, from the
 * pushed stats), with a hint of what to check. An operator must never mistake a silent fleet
 * for a dead link, or the reverse.
 *
 * @example
 * <ConnectionStatus />
 */
import { formatDuration } from '../lib/format.js';
import { useNow } from '../lib/hooks.js';
import { useEndpoint, useLive } from '../store/use-live.js';

export function ConnectionStatus() {
  const connection = useLive((s) => s.connection);
  const ready = useLive((s) => s.ready);
  const broker = useLive((s) => s.stats?.broker ?? null);
  const endpoint = useEndpoint();
  const now = useNow(1_000);

  let tone: 'ok' | 'warn' | 'err';
  let title: string;
  let hint = '';
  if (connection.kind === 'connecting') {
    tone = 'warn';
    title = `Connecting to ${endpoint}…`;
    hint =
      now - connection.since > 5_000
        ? 'Is the host running? Start it with npm start or fleetvisor serve.'
        : '';
  } else if (connection.kind === 'reconnecting') {
    tone = 'warn';
    title = `Reconnecting to ${endpoint} (${formatDuration(Math.max(0, now - connection.since))})`;
    const retry =
      connection.retryAt !== undefined && connection.retryAt > now
        ? ` Next try in ${Math.ceil((connection.retryAt - now) / 1_000)} s.`
        : '';
    // Every window or tab holds one of the host's connections (32 by default).
    const advice = /too many connections/i.test(connection.reason)
      ? ' Each Fleetvisor window or tab takes one: close those you no longer need.'
      : '';
    const kept = ready ? ' The views show the last known state until the host answers.' : '';
    hint = `${connection.reason}.${retry}${advice}${kept}`;
  } else if (connection.kind === 'unauthorized') {
    tone = 'err';
    title = 'Not signed in';
    hint = /link/i.test(connection.reason)
      ? connection.reason
      : `${connection.reason}. Open the link that fleetvisor printed when it started: it carries the access token.`;
  } else if (broker && !broker.connected) {
    tone = 'err';
    title = `Broker unreachable at ${broker.url ?? 'no URL'}`;
    hint = broker.embedded
      ? 'The embedded broker is down; devices cannot report. Check the host log for a port already in use.'
      : 'Devices cannot report. Check that the broker runs, its URL and credentials (--mqtt-url, --mqtt-username with FLEETVISOR_MQTT_PASSWORD), and TLS.';
  } else {
    tone = 'ok';
    title = 'Connected';
    hint = broker?.url ? `broker ${broker.url}${broker.embedded ? ' (embedded)' : ''}` : '';
  }

  return (
    <div
      className={`connection tone-${tone}`}
      data-testid="connection-status"
      data-state={connection.kind}
      role="status"
      aria-live="polite"
    >
      <span className={`dot tone-${tone}${tone !== 'ok' ? ' pulse' : ''}`} aria-hidden="true" />
      <span className="connection-title">{title}</span>
      {hint ? (
        <span className="connection-hint muted" title={hint}>
          {hint}
        </span>
      ) : null}
    </div>
  );
}
