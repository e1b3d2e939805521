/**
 * The cluster in the System view (docs/scale-out.md): which instance this UI talks to, the shard
 * count and the lease, each instance with the shards it holds (a bar of its share of all shards),
 * when it last renewed (stale, in red, once that is longer ago than a lease; "left" after a
 * graceful stop) and the age of its newest lease (a young one shows a rebalance), the shards
 * nobody holds (a failover in progress), each instance's change feed (the notices it sent and
 * heard, how long ago it heard the last, and the fleet read again after its listener dropped:
 * written with its heartbeat), and this instance's counts. `cluster` is polled every 2 s while
 * the view is open; a single instance (`null`) gets one quiet line.
 *
 * @example
 * <ClusterPanel />
 */
import type { ReactNode } from 'react';
import { useState } from 'react';
import type { ClusterFeedInfo, ClusterInfo, ClusterInstanceInfo } from '../../../src/host/contract.js';
import { messageOf } from '../api/client.js';
import { formatDateTime, formatDuration, formatNumber } from '../lib/format.js';
import { usePolling } from '../lib/hooks.js';
import { useClient } from '../store/use-live.js';

/** How often the panel asks for the cluster while the view is open. */
const CLUSTER_POLL_MS = 2_000;

type Polled =
  | { readonly status: 'loading' }
  | { readonly status: 'ok'; readonly value: ClusterInfo | null }
  | { readonly status: 'error'; readonly message: string; readonly value?: ClusterInfo | null };

/** How an instance looks from the lease table: renewing, silent for longer than a lease, or gone on purpose. */
type InstanceState = 'live' | 'stale' | 'left';

export function instanceState(instance: ClusterInstanceInfo, leaseMs: number): InstanceState {
  if (instance.left) return 'left';
  return instance.seenAgoMs > leaseMs ? 'stale' : 'live';
}

/** "1.2 s ago" under a minute (renewals come every couple of seconds), coarser beyond. */
export function formatAgoMs(ms: number): string {
  const v = Math.max(0, ms);
  return v < 60_000 ? `${(v / 1_000).toFixed(1)} s ago` : `${formatDuration(v)} ago`;
}

export function ClusterPanel() {
  const client = useClient();
  const [state, setState] = useState<Polled>({ status: 'loading' });

  usePolling(
    async (alive) => {
      // The last answer stays on screen when a refresh fails; the failure is said beside it.
      const failed = (message: string) =>
        setState((s) => ({
          status: 'error',
          message,
          ...(s.status !== 'loading' && s.value !== undefined ? { value: s.value } : {}),
        }));
      try {
        const r = await client.call('cluster', {});
        if (!alive()) return CLUSTER_POLL_MS;
        if (r.ok) setState({ status: 'ok', value: r.value });
        else failed(`${r.error.code}: ${r.error.message}`);
      } catch (error) {
        if (alive()) failed(messageOf(error));
      }
      return CLUSTER_POLL_MS;
    },
    [client],
  );

  if (state.status === 'loading') return null;
  const info = state.value;
  if (info === undefined)
    return (
      <p className="tone-text-warn small-text" data-testid="cluster-error">
        Could not ask whether this instance runs in a cluster: {state.status === 'error' ? state.message : ''}
      </p>
    );
  if (info === null)
    return (
      <p className="muted small-text" data-testid="cluster-single">
        Single instance (no cluster)
      </p>
    );
  return <Cluster info={info} failure={state.status === 'error' ? state.message : null} />;
}

function Cluster({ info, failure }: { readonly info: ClusterInfo; readonly failure: string | null }) {
  const share = (shards: number) => (info.shardCount > 0 ? shards / info.shardCount : 0);
  const s = info.stats;
  return (
    <section
      className={`panel cluster${info.unowned > 0 ? ' warn' : ''}`}
      aria-label="Cluster"
      data-testid="cluster-panel"
    >
      <div className="panel-head">
        <h2>Cluster</h2>
        <span className="muted small-text">
          from the lease table, every {formatDuration(CLUSTER_POLL_MS)}
        </span>
      </div>
      <div className="cluster-facts">
        <Fact label="This UI talks to">
          <span className="mono" data-testid="cluster-self">
            {info.self}
          </span>
        </Fact>
        <Fact label="Shards">
          <span data-testid="cluster-shard-count">{formatNumber(info.shardCount)}</span>
        </Fact>
        <Fact label="Lease">{formatDuration(info.leaseMs)}</Fact>
        <Fact label="Unowned shards">
          {info.unowned > 0 ? (
            <span className="tone-text-warn" data-testid="cluster-unowned" data-unowned={info.unowned}>
              {formatNumber(info.unowned)} <span className="badge tone-warn">failover in progress</span>
            </span>
          ) : (
            <span className="muted" data-testid="cluster-unowned" data-unowned={0}>
              none
            </span>
          )}
        </Fact>
        <Fact label="Devices here">{formatNumber(info.devices)}</Fact>
      </div>

      <table className="kv cluster-table" aria-label="Cluster instances">
        <thead>
          <tr>
            <th>Instance</th>
            <th className="cluster-col-host">Host:pid</th>
            <th className="cluster-col-shards num">Shards</th>
            <th className="cluster-col-share">Share</th>
            <th className="cluster-col-seen">Last renewal</th>
            <th className="cluster-col-newest">Newest lease</th>
            <th
              className="cluster-col-feed"
              title="Changes of devices' rows told to and heard from the other instances (LISTEN/NOTIFY), since the instance started"
            >
              Change feed
            </th>
          </tr>
        </thead>
        <tbody>
          {info.instances.map((i) => {
            const st = instanceState(i, info.leaseMs);
            const self = i.id === info.self;
            return (
              <tr
                key={i.id}
                className={`cluster-${st}${self ? ' cluster-self' : ''}`}
                data-testid="cluster-instance"
                data-instance-id={i.id}
                data-shards={i.shards}
                data-state={st}
              >
                <td className="cluster-instance-cell" title={`started ${formatDateTime(i.startedAt)}`}>
                  <span
                    className={`dot tone-${st === 'live' ? 'ok' : st === 'stale' ? 'err' : 'idle'}`}
                    aria-hidden="true"
                  />{' '}
                  <span className="mono strong">{i.id}</span>
                  {self ? <span className="badge small tone-info">this UI</span> : null}
                  {i.leads.length > 0 ? (
                    <span
                      className="badge small tone-ok"
                      data-testid="cluster-leads"
                      title="Holds these leader leases: primary runs the cluster's Sparkplug Primary Host"
                    >
                      leads: {i.leads.join(', ')}
                    </span>
                  ) : null}
                  {i.pins > 0 ? (
                    <span
                      className="badge small"
                      data-testid="cluster-pins"
                      title="Devices run here whatever their shards: their serial ports or buses are on this machine, or their Sparkplug node runs here"
                    >
                      {formatNumber(i.pins)} pinned
                    </span>
                  ) : null}
                </td>
                <td className="mono" title={i.apiUrl ?? undefined}>
                  {i.host}:{i.pid}
                  {i.apiUrl && !self && st === 'live' ? (
                    <>
                      {' '}
                      <a
                        className="cluster-open"
                        href={i.apiUrl}
                        target="_blank"
                        rel="noreferrer"
                        data-testid="cluster-open"
                        title={`Open ${i.id}'s UI (${i.apiUrl}); it asks for its own token, printed when it started`}
                      >
                        open ↗
                      </a>
                    </>
                  ) : null}
                </td>
                <td className="num" data-testid="cluster-shards">
                  {formatNumber(i.shards)}
                </td>
                <td className="cluster-share-cell">
                  <ShareBar share={share(i.shards)} label={`${i.id} holds`} />
                </td>
                <td data-testid="cluster-seen">
                  {st === 'left' ? (
                    <>
                      {formatAgoMs(i.seenAgoMs)}
                      <span className="badge small">left</span>
                    </>
                  ) : (
                    <>
                      <span className={st === 'stale' ? 'tone-text-err strong' : ''}>
                        {formatAgoMs(i.seenAgoMs)}
                      </span>
                      {st === 'stale' ? <span className="badge small tone-err">stale</span> : null}
                    </>
                  )}
                </td>
                <td
                  title={
                    i.oldestLeaseAgeMs === null
                      ? undefined
                      : `oldest lease taken ${formatAgoMs(i.oldestLeaseAgeMs)}`
                  }
                >
                  {i.newestLeaseAgeMs === null ? (
                    <span className="muted">—</span>
                  ) : (
                    formatAgoMs(i.newestLeaseAgeMs)
                  )}
                </td>
                <FeedCell feed={i.feed} />
              </tr>
            );
          })}
          {info.unowned > 0 ? (
            <tr className="cluster-unowned-row" data-testid="cluster-unowned-row">
              <td colSpan={2}>
                <span className="dot tone-warn" aria-hidden="true" /> <span className="strong">unowned</span>{' '}
                <span className="muted small-text">no live lease until an instance claims them</span>
              </td>
              <td className="num">{formatNumber(info.unowned)}</td>
              <td className="cluster-share-cell">
                <ShareBar share={share(info.unowned)} label="unowned" tone="warn" />
              </td>
              <td colSpan={3} />
            </tr>
          ) : null}
        </tbody>
      </table>

      <div className="cluster-stats small-text" data-testid="cluster-stats">
        <span className="muted">
          <span className="mono">{info.self}</span> since it started:
        </span>
        <Count n={s.renewals} label="renewals" />
        <Count n={s.renewFailures} label="renewal failures" bad />
        <Count n={s.claimed} label="shards claimed" />
        <Count n={s.handedOver} label="handed over" />
        <Count n={s.lost} label="lost" bad />
        {info.remotePush ? (
          <span data-testid="cluster-pushed" data-rows={info.remotePush.rows}>
            · pushed to its UIs: <strong>{formatNumber(info.remotePush.rows)}</strong> rows of other
            instances&apos; devices ({formatNumber(info.remotePush.reads)} reads
            {info.remotePush.failures > 0 ? (
              <span className="tone-text-err">, {formatNumber(info.remotePush.failures)} failed</span>
            ) : null}
            )
          </span>
        ) : null}
      </div>
      {failure ? <p className="tone-text-warn small-text">Last refresh failed: {failure}</p> : null}
    </section>
  );
}

/**
 * An instance's change feed in two short lines: sent (notices, ids) and heard (notices, ids, the
 * last one's age), then the fleet's re-reads after a dropped listener, in red when there are any
 * and when it is not listening.
 */
function FeedCell({ feed }: { readonly feed: ClusterFeedInfo | null }) {
  if (!feed)
    return (
      <td className="muted small-text" data-testid="cluster-feed" data-feed="none">
        —
      </td>
    );
  return (
    <td
      className="cluster-feed small-text"
      data-testid="cluster-feed"
      data-notices-sent={feed.noticesSent}
      data-ids-sent={feed.idsSent}
      data-notices-heard={feed.noticesHeard}
      data-ids-heard={feed.idsHeard}
      data-rereads={feed.rereads}
      data-last-notice-ms={feed.lastNoticeAgoMs ?? ''}
      data-listening={feed.listening}
    >
      <div title="NOTIFY statements sent, and the device ids they named">
        sent <strong>{formatNumber(feed.noticesSent)}</strong> · {formatNumber(feed.idsSent)} ids
        {feed.sendFailures > 0 ? (
          <span className="tone-text-err"> · {formatNumber(feed.sendFailures)} failed</span>
        ) : null}
      </div>
      <div title="Notices heard (its own included), the ids they named, and how long ago the last came">
        heard <strong>{formatNumber(feed.noticesHeard)}</strong> · {formatNumber(feed.idsHeard)} ids
        <span className="muted">
          {' '}
          · last {feed.lastNoticeAgoMs === null ? 'never' : formatAgoMs(feed.lastNoticeAgoMs)}
        </span>
      </div>
      <div title="The whole fleet read again because the listening connection dropped and came back">
        {feed.listening ? null : <span className="tone-text-err strong">not listening · </span>}
        <span className={feed.rereads > 0 ? 'tone-text-warn' : 'muted'}>
          {formatNumber(feed.rereads)} re-read{feed.rereads === 1 ? '' : 's'} after a dropped listener
        </span>
      </div>
    </td>
  );
}

function Fact({ label, children }: { readonly label: string; readonly children: ReactNode }) {
  return (
    <div className="cluster-fact">
      <span className="cluster-fact-label">{label}</span>
      <span className="cluster-fact-value">{children}</span>
    </div>
  );
}

function ShareBar({
  share,
  label,
  tone = 'accent',
}: {
  readonly share: number;
  readonly label: string;
  readonly tone?: 'accent' | 'warn';
}) {
  const percent = `${formatNumber(share * 100, share > 0 && share < 0.1 ? 1 : 0)} %`;
  return (
    <div className="cluster-share">
      <div
        className={`cluster-share-bar tone-${tone}`}
        role="img"
        aria-label={`${label} ${percent} of all shards`}
      >
        <span style={{ width: `${Math.min(100, share * 100)}%` }} />
      </div>
      <span className="cluster-share-text">{percent}</span>
    </div>
  );
}

/** A count of this instance; failures and losses turn red when there are any. */
function Count({
  n,
  label,
  bad = false,
}: {
  readonly n: number;
  readonly label: string;
  readonly bad?: boolean;
}) {
  return (
    <span className={bad && n > 0 ? 'tone-text-err' : ''}>
      <strong>{formatNumber(n)}</strong> {label}
    </span>
  );
}

/** How often the fleet view asks how much of the fleet this instance runs. */
const SHARE_POLL_MS = 5_000;

/**
 * Above the fleet table of a cluster instance: which part of the fleet this instance supervises
 * (its shards' devices), and that the table lists the others too, with their owner, read from the
 * shared database and pushed as they change. Nothing for a single instance.
 */
export function ClusterShareNote({
  onOpenSystem,
  remoteRows,
  remoteError,
}: {
  readonly onOpenSystem?: () => void;
  /** Rows of other instances' devices the table shows. */
  readonly remoteRows?: number;
  /** Why the last read of them failed (they stay as last read). */
  readonly remoteError?: string | null;
}) {
  const client = useClient();
  const [info, setInfo] = useState<ClusterInfo | null>(null);
  usePolling(
    async (alive) => {
      try {
        const r = await client.call('cluster', {});
        if (alive() && r.ok) setInfo(r.value);
      } catch {
        // The next poll tries again; the note is a hint, not a view.
      }
      return SHARE_POLL_MS;
    },
    [client],
  );
  if (!info) return null;
  const others = info.instances.filter((i) => i.id !== info.self && !i.left && i.shards > 0).length;
  return (
    <div className="banner cluster-share" data-testid="cluster-share">
      <span>
        This instance (<code>{info.self}</code>) supervises{' '}
        <strong data-testid="cluster-share-here">{info.devices.toLocaleString('en-US')}</strong> of the
        fleet&apos;s{' '}
        <strong data-testid="cluster-share-fleet">{info.fleetDevices.toLocaleString('en-US')}</strong>{' '}
        devices: those of the shards it leases, and those pinned to it (their serial port or bus is on its
        machine), live.{' '}
        {others > 0
          ? `The others run on ${others} other instance${others === 1 ? '' : 's'}; actions on them are carried out by their owner.`
          : null}{' '}
        {remoteRows !== undefined && remoteRows > 0 ? (
          <span data-testid="cluster-share-remote">
            The table lists them too ({remoteRows.toLocaleString('en-US')}, marked with their instance), read
            from the shared database: their owner saves every change, and this instance pushes it here within
            about a second; each shows how long ago it was read.
          </span>
        ) : null}
        {remoteError ? (
          <span className="tone-text-err" data-testid="cluster-share-remote-error">
            {' '}
            Reading the other instances&apos; devices failed ({remoteError}); their rows are as last read.
          </span>
        ) : null}
      </span>
      {onOpenSystem ? (
        <button type="button" className="link" onClick={onOpenSystem}>
          Cluster view
        </button>
      ) : null}
    </div>
  );
}
