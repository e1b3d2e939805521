/**
 * The tree's side panel for the selected process, as Erlang's observer shows process info: what
 * the tree row knows (status, type, pid, supervisor, restart type and intensity) and what the host
 * answers to `processInfo` — a machine's state, the mailbox length, the running timers, what can
 * honestly be said of its memory, how its last process ended (with the error's detail) and the
 * restart timeline, newest first. The actions (kill, terminate, restart) are the Tree view's: it
 * confirms them and says what the supervisor did.
 *
 * Without a host that answers `processInfo` (the design preview), the row's facts show alone.
 *
 * @example
 * <ProcessPanel node={node} parent={parent} lastPid={41} actions={{ onKill, onTerminate, onRestart, onOpenDevice }} />
 */
import { useMemo } from 'react';
import type { ArgsOf, ProcessInfo, ProcessLifeEntry, TreeNode } from '../../../src/host/contract.js';
import { StateBadge, StatusDot, toneOfStatus } from '../components/StateBadge.js';
import { formatBytes, formatDuration, formatIntensity, formatRemaining, formatTime } from '../lib/format.js';
import { useCall, useNow } from '../lib/hooks.js';
import { countStatuses } from '../lib/tree-flatten.js';

const REFRESH_MS = 2_000;

export interface ProcessActions {
  readonly onKill: () => void;
  readonly onTerminate: () => void;
  readonly onRestart: () => void;
  readonly onOpenDevice: (id: string) => void;
}

/** Which actions a node offers, by where it sits (shared with the Tree view's confirmations). */
export function actionsFor(node: TreeNode, parent: TreeNode | null) {
  const underSupervisor = parent !== null && parent.pid !== null;
  // A device's own supervisor is a child of the dynamic `devices`: it has no named-child API.
  const dynamicChild = node.deviceId !== undefined && node.childId === node.deviceId;
  const running = node.status === 'running' && node.pid !== null;
  return {
    kill: parent !== null && node.pid !== null,
    terminate: underSupervisor && running && !dynamicChild,
    restart: underSupervisor && running && !dynamicChild,
    restartStopped: underSupervisor && (node.status === 'stopped' || node.status === 'failed'),
  };
}

/** What to ask the host: a running process by pid; a child with nothing running by its supervisor. */
function infoArgs(
  node: TreeNode,
  parent: TreeNode | null,
  lastPid: number | null,
): ArgsOf<'processInfo'> | null {
  if (node.pid !== null) return { pid: node.pid };
  if (parent?.pid == null) return null;
  return { supervisorPid: parent.pid, childId: node.childId, ...(lastPid !== null ? { pid: lastPid } : {}) };
}

export function ProcessPanel({
  node,
  parent,
  lastPid,
  actions,
}: {
  readonly node: TreeNode;
  readonly parent: TreeNode | null;
  /** The pid this node last ran as, so a stopped child's timeline is still found. */
  readonly lastPid: number | null;
  readonly actions: ProcessActions;
}) {
  const args = infoArgs(node, parent, lastPid);
  const info = useCall(
    (c) => c.call('processInfo', args ?? { pid: 1 }),
    [JSON.stringify(args), node.restarts, node.status],
    {
      refreshMs: REFRESH_MS,
      enabled: args !== null,
    },
  );
  // An answer about another node (the selection moved, the call still running) is not shown.
  const value = info.value && sameProcess(info.value, node) ? info.value : undefined;
  const counts = useMemo(() => (node.children ? countStatuses(node) : null), [node]);
  const can = actionsFor(node, parent);
  return (
    <div className="node-card" data-testid="process-panel">
      <h2>
        <StatusDot status={node.status} /> <span className="mono">{value?.name ?? node.name}</span>
      </h2>
      <dl className="kv-list">
        <dt>Status</dt>
        <dd className={`tone-text-${toneOfStatus(node.status)}`} data-testid="process-status">
          {node.status}
        </dd>
        <dt>Type</dt>
        <dd>
          {node.type}
          {value?.kind ? <span className="muted"> · {value.kind}</span> : null}
        </dd>
        <dt>Pid</dt>
        <dd className="mono" data-testid="process-pid">
          {node.pid === null ? '—' : `<${node.pid}>`}
        </dd>
        <dt>Child id</dt>
        <dd className="mono">{node.childId}</dd>
        <dt>Supervisor</dt>
        <dd className="mono">
          {parent ? `${parent.name}${parent.pid !== null ? ` <${parent.pid}>` : ''}` : '—'}
        </dd>
        {node.restartType ? (
          <>
            <dt>Restart</dt>
            <dd>{node.restartType}</dd>
          </>
        ) : null}
        <dt>Restarts</dt>
        <dd data-testid="process-restarts">{node.restarts}</dd>
        {node.strategy ? (
          <>
            <dt>Strategy</dt>
            <dd>{node.strategy}</dd>
          </>
        ) : null}
        {node.intensity ? (
          <>
            <dt>Intensity</dt>
            <dd>
              {formatIntensity(node.intensity)}
              <IntensityMeter used={node.intensity.restartsInWindow} max={node.intensity.maxRestarts} />
            </dd>
          </>
        ) : null}
        {node.state ? (
          <>
            <dt>State</dt>
            <dd>
              <StateBadge state={node.state} testId="node-state" />
              {value?.hibernating ? <span className="muted small-text"> hibernating</span> : null}
            </dd>
          </>
        ) : null}
        {value ? <Measured info={value} /> : null}
        {node.reason ? (
          <>
            <dt>{node.status === 'running' ? 'Last exit' : 'Why'}</dt>
            <dd className="mono small-text" data-testid="node-reason">
              {node.reason}
              {value?.lastExit?.at ? (
                <span className="muted"> at {formatTime(value.lastExit.at)}</span>
              ) : null}
            </dd>
          </>
        ) : null}
        {counts ? (
          <>
            <dt>Below</dt>
            <dd>
              {Object.entries(counts)
                .map(([status, n]) => `${n} ${status}`)
                .join(' · ') || 'nothing'}
            </dd>
          </>
        ) : null}
        <dt>Key</dt>
        <dd className="mono small-text">{node.key}</dd>
      </dl>
      {value?.lastExit?.detail ? (
        <details className="process-detail">
          <summary className="small-text">Exit detail</summary>
          <pre className="mono small-text process-detail-text" data-testid="exit-detail">
            {value.lastExit.detail}
          </pre>
        </details>
      ) : null}
      <div className="node-actions">
        {can.kill ? (
          <button type="button" className="btn danger" onClick={actions.onKill} data-testid="kill-button">
            Kill
          </button>
        ) : null}
        {can.terminate ? (
          <button type="button" className="btn" onClick={actions.onTerminate} data-testid="terminate-button">
            Terminate
          </button>
        ) : null}
        {can.restart ? (
          <button type="button" className="btn" onClick={actions.onRestart} data-testid="restart-button">
            Restart
          </button>
        ) : null}
        {can.restartStopped ? (
          <button
            type="button"
            className="btn"
            onClick={actions.onRestart}
            data-testid="restart-child-button"
          >
            Restart child
          </button>
        ) : null}
        {node.deviceId ? (
          <button type="button" className="btn" onClick={() => actions.onOpenDevice(node.deviceId!)}>
            Open device {node.deviceId}
          </button>
        ) : null}
      </div>
      {value ? <Timeline info={value} /> : null}
      {value ? <Timers info={value} /> : null}
      {info.status === 'error' && info.code !== 'unavailable' ? (
        <p className="tone-text-warn small-text">Process info: {info.message}</p>
      ) : null}
    </div>
  );
}

function sameProcess(info: ProcessInfo, node: TreeNode): boolean {
  return node.pid !== null ? info.pid === node.pid : info.childId === node.childId;
}

/** Mailbox and memory: a number where the host can measure it, else what it says instead. */
function Measured({ info }: { readonly info: ProcessInfo }) {
  return (
    <>
      <dt>Mailbox</dt>
      <dd data-testid="process-mailbox" title={info.mailbox.note}>
        {info.mailbox.length === null ? '—' : info.mailbox.length}
        <div className="muted small-text">{info.mailbox.note}</div>
      </dd>
      <dt>Timers</dt>
      <dd data-testid="process-timers">{info.timers.length}</dd>
      <dt>Memory</dt>
      <dd data-testid="process-memory">
        {info.memory.bytes === null ? '—' : formatBytes(info.memory.bytes)}
        <div className="muted small-text">{info.memory.note}</div>
      </dd>
    </>
  );
}

function Timers({ info }: { readonly info: ProcessInfo }) {
  const now = useNow(1_000);
  if (info.timers.length === 0) return null;
  return (
    <section className="process-section">
      <h3>Running timers</h3>
      <ul className="process-list">
        {info.timers.map((t) => (
          <li key={`${t.kind}:${t.key}:${t.deadline}`} data-testid="timer-entry">
            <span className="mono">{t.kind === t.key ? t.kind : `${t.kind}:${t.key}`}</span>
            <span className="mono small-text process-timer-left">in {formatRemaining(t.deadline - now)}</span>
            {t.event ? <span className="muted small-text process-timer-event">sends {t.event}</span> : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Restarts and crashes, newest first: when, why, and what took its place. */
function Timeline({ info }: { readonly info: ProcessInfo }) {
  const entries = [...info.timeline].reverse();
  return (
    <section className="process-section">
      <h3>Restart timeline</h3>
      {entries.length === 0 ? (
        <p className="muted small-text" data-testid="timeline-empty">
          No exit since {formatTime(info.timelineSince)} (when the host started keeping them).
        </p>
      ) : (
        <ol className="process-list timeline" data-testid="process-timeline">
          {entries.map((e) => (
            <li key={`${e.pid}:${e.at}`} data-testid="timeline-entry" data-kind={e.kind}>
              <span className="mono small-text muted">{formatTime(e.at)}</span>
              <span className={`timeline-what ${e.kind === 'stop' ? 'muted' : 'tone-text-err'}`}>
                <span className="mono">&lt;{e.pid}&gt;</span> {e.reason}
              </span>
              <span className="small-text muted timeline-then">{successor(e)}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function successor(e: ProcessLifeEntry): string {
  const r = e.replacedBy;
  if (!r) return e.kind === 'gaveUp' ? 'the supervisor exited' : 'not started again';
  if (r.by === 'start') return `started again as <${r.pid}> ${formatDuration(r.at - e.at)} later`;
  const window =
    r.restartsInWindow !== undefined ? `, ${r.restartsInWindow}/${r.maxRestarts} in the window` : '';
  return `restarted as <${r.pid}> in ${formatDuration(r.durationMs ?? r.at - e.at)}${window}`;
}

function IntensityMeter({ used, max }: { readonly used: number; readonly max: number }) {
  const cells = Math.min(max, 20);
  return (
    <span className="meter" aria-hidden="true">
      {Array.from({ length: cells }, (_, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: cells are positional
        <span key={i} className={i < used ? (used >= max ? 'on over' : 'on') : ''} />
      ))}
    </span>
  );
}
