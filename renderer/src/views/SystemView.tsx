/**
 * The host at a glance: devices (total, online, failed), processes, ingest rate, command latency
 * percentiles, restarts, queue lengths, the broker and the heap — each with a sparkline of the
 * last minutes (kept in the client from the pushed stats) — the cluster this instance belongs to
 * (ClusterPanel.tsx, one quiet line for a single instance) and the health checks of every
 * long-lived service (`health`, every 5 s).
 *
 * @example
 * <SystemView />
 */
import type { ReactNode } from 'react';
import type { SystemStats } from '../../../src/host/contract.js';
import { Sparkline } from '../components/Sparkline.js';
import { ErrorState, Loading, Waiting } from '../components/States.js';
import { formatBytes, formatDuration, formatMs, formatNumber } from '../lib/format.js';
import { useCall } from '../lib/hooks.js';
import { useLive } from '../store/use-live.js';
import { ClusterPanel } from './ClusterPanel.js';

export function SystemView() {
  const stats = useLive((s) => s.stats);
  const history = useLive((s) => s.statsHistory);
  const health = useCall((c) => c.call('health', {}), [], { refreshMs: 5_000 });

  if (!stats) return <Waiting what="the host's figures" />;
  const series = (pick: (s: SystemStats) => number | null) => history.map(pick);
  const restartsPerSample = history.map((s, i) =>
    i === 0 ? 0 : Math.max(0, s.restarts - history[i - 1]!.restarts),
  );
  const span = history.length > 1 ? history[history.length - 1]!.at - history[0]!.at : 0;
  const queueNames = Object.keys(stats.queues).sort();

  return (
    <div className="view system">
      <p className="muted small-text">
        Trends cover the last {span > 0 ? formatDuration(span) : 'moments'} ({history.length} samples, kept in
        this window).
      </p>
      <div className="cards">
        <Card
          title="Devices"
          value={formatNumber(stats.devices.total)}
          spark={series((s) => s.devices.online)}
          sparkLabel="online devices"
        >
          <span className="tone-text-ok">{formatNumber(stats.devices.online)} online</span>
          {' · '}
          <span className={stats.devices.failed > 0 ? 'tone-text-err' : 'muted'}>
            {formatNumber(stats.devices.failed)} failed
          </span>
        </Card>
        <Card
          title="Processes"
          value={formatNumber(stats.processes)}
          spark={series((s) => s.processes)}
          sparkLabel="processes"
        />
        <Card
          title="Ingest"
          value={`${formatNumber(stats.ingestRate)} msg/s`}
          spark={series((s) => s.ingestRate)}
          sparkLabel="ingest rate"
        >
          <span className="muted">device messages, last 10 s</span>
        </Card>
        <Card
          title="Command latency"
          value={`p95 ${formatMs(stats.commandLatencyMs.p95)}`}
          spark={series((s) => s.commandLatencyMs.p95)}
          sparkLabel="p95 latency"
          tone="warn"
        >
          p50 {formatMs(stats.commandLatencyMs.p50)} · p99 {formatMs(stats.commandLatencyMs.p99)}
        </Card>
        <Card
          title="Restarts"
          value={formatNumber(stats.restarts)}
          spark={restartsPerSample}
          sparkLabel="restarts per sample"
          tone="err"
        >
          <span className="muted">since the host started</span>
        </Card>
        <Card
          title="Heap"
          value={formatBytes(stats.heapUsedBytes)}
          spark={series((s) => s.heapUsedBytes)}
          sparkLabel="heap used"
        />
        <section className={`card broker ${stats.broker.connected ? '' : 'bad'}`} aria-label="Broker">
          <h3>Broker</h3>
          <div className="card-value">
            <span className={`dot tone-${stats.broker.connected ? 'ok' : 'err'}`} aria-hidden="true" />{' '}
            {stats.broker.connected ? 'connected' : 'unreachable'}
          </div>
          <div className="mono small-text">{stats.broker.url ?? 'no broker configured'}</div>
          <div className="muted small-text">
            {stats.broker.embedded ? 'embedded (aedes, in the app)' : 'external'}
          </div>
          {stats.broker.embedded ? <Refused refused={stats.broker.refused} /> : null}
        </section>
        <DataLoss loss={stats.dataLoss} duplicates={stats.duplicatesIgnored} />
      </div>

      <ClusterPanel />

      <div className="grid two">
        <section className="panel">
          <h2>Queues</h2>
          {queueNames.length === 0 ? (
            <p className="muted">No queues reported.</p>
          ) : (
            <table className="kv">
              <thead>
                <tr>
                  <th>Queue</th>
                  <th className="num">Length</th>
                  <th>Trend</th>
                </tr>
              </thead>
              <tbody>
                {queueNames.map((q) => (
                  <tr key={q}>
                    <td className="mono">{q}</td>
                    <td className="num">{formatNumber(stats.queues[q])}</td>
                    <td>
                      <Sparkline
                        values={series((s) => s.queues[q] ?? null)}
                        label={`${q} length`}
                        width={160}
                        height={20}
                      />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section className="panel">
          <div className="panel-head">
            <h2>Health</h2>
            <button type="button" className="btn ghost small" onClick={health.reload}>
              Refresh
            </button>
          </div>
          {health.value ? (
            <ul className="health" data-testid="health-list">
              {health.value.map((h) => (
                <li key={h.name} className={h.ok ? 'ok' : 'bad'}>
                  <span className={`dot tone-${h.ok ? 'ok' : 'err'}`} aria-hidden="true" />
                  <span className="mono strong">{h.name}</span>
                  <span className={h.ok ? 'muted' : 'tone-text-err'}>{h.detail}</span>
                </li>
              ))}
            </ul>
          ) : health.status === 'error' ? (
            <ErrorState
              title="Could not read the health checks"
              message={health.message}
              onRetry={health.reload}
            />
          ) : (
            <Loading label="Asking every service…" />
          )}
          {health.value && health.status === 'error' ? (
            <p className="tone-text-warn small-text">Last refresh failed: {health.message}</p>
          ) : null}
        </section>
      </div>
    </div>
  );
}

function Card({
  title,
  value,
  spark,
  sparkLabel,
  tone = 'accent',
  children,
}: {
  readonly title: string;
  readonly value: string;
  readonly spark: readonly (number | null)[];
  readonly sparkLabel: string;
  readonly tone?: 'accent' | 'ok' | 'warn' | 'err';
  readonly children?: ReactNode;
}) {
  return (
    <section className="card" aria-label={title}>
      <h3>{title}</h3>
      <div className="card-value">{value}</div>
      <div className="card-sub small-text">{children}</div>
      <Sparkline values={spark} label={sparkLabel} tone={tone} width={180} height={30} />
    </section>
  );
}

/** `n` and its noun, singular for one; empty for none. */
function counted(n: number, one: string, many: string): string {
  return n === 0 ? '' : `${formatNumber(n)} ${n === 1 ? one : many}`;
}

/** What the broker refused: strangers and devices reaching past their ACL (accounts and ACL on), and who. */
function Refused({ refused }: { refused: SystemStats['broker']['refused'] }) {
  const total = refused.connect + refused.publish + refused.subscribe;
  const clients = refused.clients ?? [];
  return (
    <div className={`small-text ${total > 0 ? 'tone-text-warn' : 'muted'}`} data-testid="broker-refused">
      refused: {formatNumber(refused.connect)} connects · {formatNumber(refused.publish)} publishes ·{' '}
      {formatNumber(refused.subscribe)} subscribes
      {clients.length > 0 ? (
        <details data-testid="broker-refused-clients">
          <summary>by client (latest {clients.length})</summary>
          <ul className="mono">
            {clients.map((c) => (
              <li key={c.clientId} title={`last at ${new Date(c.lastAt).toISOString()}`}>
                {c.clientId}
                {c.username !== null && c.username !== c.clientId ? ` (user ${c.username})` : ''}:{' '}
                {[
                  counted(c.connect, 'connect', 'connects'),
                  counted(c.publish, 'publish', 'publishes'),
                  counted(c.subscribe, 'subscribe', 'subscribes'),
                ]
                  .filter(Boolean)
                  .join(' · ')}{' '}
                — {c.lastReason}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </div>
  );
}

/** Device messages that reached the host but were not stored: zero is the promise, anything else is shown as loss. */
function DataLoss({ loss, duplicates }: { loss: SystemStats['dataLoss']; duplicates: number }) {
  const causes = Object.entries(loss.byCause).filter(([, n]) => n > 0);
  return (
    <section className={`card ${loss.total > 0 ? 'bad' : ''}`} aria-label="Data loss">
      <h3>Data loss</h3>
      <div className={`card-value ${loss.total > 0 ? 'tone-text-err' : ''}`}>
        {loss.total > 0 ? `${formatNumber(loss.total)} lost` : 'none'}
      </div>
      <div className="muted small-text">
        {causes.length > 0
          ? causes.map(([cause, n]) => `${cause}: ${formatNumber(n)}`).join(' · ')
          : 'every message that reached the host was stored'}
      </div>
      <div className="muted small-text">{formatNumber(duplicates)} duplicates ignored (stored once)</div>
    </section>
  );
}
