/**
 * The supervision tree, as Erlang's observer shows it: every supervisor and worker, live, coloured
 * by status, with its strategy, restart type, restarts and restart intensity ("2/3 in 5 s"), and
 * the machine state of device workers. Infrastructure is open, device subtrees closed (thousands
 * of them); the visible rows are virtualized. Search jumps to a device or process; the selected
 * node's process info sits on the right (ProcessPanel: mailbox, timers, memory, last exit, restart
 * timeline) with Kill for every process under a supervisor and Terminate / Restart for a named
 * child; each is confirmed first, the confirmation says what it will cause (a kill: a restart, or
 * its supervisor giving up) and the banner then says what the supervisor did. Failed and stopped
 * children stay in the tree with the reason.
 *
 * Keyboard: ↑/↓ move, ←/→ close/open, Enter opens the device, `/` searches.
 *
 * @example
 * <TreeView onOpenDevice={(id) => go({ view: 'device', id })} />
 */
import type { KeyboardEvent } from 'react';
import { useEffect, useMemo, useRef, useState } from 'react';
import type { TreeNode } from '../../../src/host/contract.js';
import { ConfirmDialog } from '../components/ConfirmDialog.js';
import { StateBadge, StatusDot } from '../components/StateBadge.js';
import { Empty, Waiting } from '../components/States.js';
import { formatIntensity } from '../lib/format.js';
import { useVirtualRows } from '../lib/hooks.js';
import type { KillWatch } from '../lib/kill-outcome.js';
import { killConsequence, killOutcome } from '../lib/kill-outcome.js';
import { flattenVisible, indexTree, isOpen, pathTo, searchTree } from '../lib/tree-flatten.js';
import { useClient, useLive } from '../store/use-live.js';
import { ProcessPanel } from './ProcessPanel.js';

const ROW_HEIGHT = 26;
const INDENT = 18;

export function TreeView({ onOpenDevice }: { readonly onOpenDevice: (id: string) => void }) {
  const tree = useLive((s) => s.tree);
  const ready = useLive((s) => s.ready);
  const client = useClient();
  const [toggled, setToggled] = useState<ReadonlySet<string>>(new Set());
  const [selectedKey, setSelectedKey] = useState<string | null>(null);
  const [query, setQuery] = useState('');
  const [matchIndex, setMatchIndex] = useState(0);
  const [ask, setAsk] = useState<Ask | null>(null);
  const [killWatch, setKillWatch] = useState<KillWatch | null>(null);
  const [notice, setNotice] = useState<{ tone: 'ok' | 'err'; text: string } | null>(null);
  const searchRef = useRef<HTMLInputElement>(null);
  // The pid each node last ran as: a stopped child's timeline is found by it.
  const lastPids = useRef(new Map<string, number>());

  const rows = useMemo(() => flattenVisible(tree, toggled), [tree, toggled]);
  const index = useMemo(() => indexTree(tree), [tree]);
  const matches = useMemo(() => searchTree(tree, query), [tree, query]);
  const win = useVirtualRows(rows.length, ROW_HEIGHT);
  const selected = selectedKey ? index.get(selectedKey) : undefined;
  if (selected && selected.node.pid !== null) lastPids.current.set(selected.node.key, selected.node.pid);
  const activeIndex = selectedKey ? rows.findIndex((r) => r.node.key === selectedKey) : -1;

  const reveal = (key: string) => {
    const path = pathTo(tree, (n) => n.key === key);
    if (!path) return;
    setToggled((old) => {
      const next = new Set(old);
      for (const n of path.slice(0, -1)) if (!isOpen(n, next)) flip(next, n);
      return next;
    });
    setSelectedKey(key);
  };

  // After a reveal changed the rows, bring the selection into view.
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll only when the selection or rows move
  useEffect(() => {
    if (activeIndex >= 0) win.scrollToIndex(activeIndex);
  }, [selectedKey, rows.length]);

  // A kill's banner says what the supervisor did, read from the trees that follow it.
  useEffect(() => {
    if (!killWatch) return;
    const outcome = killOutcome(killWatch, tree);
    if (outcome) {
      setNotice(outcome);
      setKillWatch(null);
    }
  }, [tree, killWatch]);

  useEffect(() => {
    const onSlash = (e: globalThis.KeyboardEvent) => {
      if (e.key !== '/' || (e.target as HTMLElement | null)?.closest('input, textarea, select')) return;
      e.preventDefault();
      searchRef.current?.focus();
    };
    window.addEventListener('keydown', onSlash);
    return () => window.removeEventListener('keydown', onSlash);
  }, []);

  // Typing reveals the first match after a short pause, so the tree shows what the search found;
  // Enter then stays on it once before moving on.
  const typedReveal = useRef<string | null>(null);
  // The pending reveal: Enter or a click on a row before it fires wins over it (it never moves a
  // selection the operator made after typing).
  const pendingReveal = useRef<number | undefined>(undefined);
  const cancelTypedReveal = () => {
    window.clearTimeout(pendingReveal.current);
    pendingReveal.current = undefined;
  };
  // biome-ignore lint/correctness/useExhaustiveDependencies: only a change of the query reveals; pushed trees do not
  useEffect(() => {
    if (!query.trim()) return;
    pendingReveal.current = window.setTimeout(() => {
      pendingReveal.current = undefined;
      const first = searchTree(tree, query)[0];
      if (!first) return;
      typedReveal.current = first.key;
      reveal(first.key);
    }, 200);
    return cancelTypedReveal;
  }, [query]);

  const jump = (step: number) => {
    if (matches.length === 0) return;
    const i = (((matchIndex + step) % matches.length) + matches.length) % matches.length;
    setMatchIndex(i);
    reveal(matches[i]!.key);
  };

  const toggle = (node: TreeNode) =>
    setToggled((old) => {
      const next = new Set(old);
      flip(next, node);
      return next;
    });

  const onKeyDown = (e: KeyboardEvent<HTMLDivElement>) => {
    const current = activeIndex >= 0 ? rows[activeIndex] : undefined;
    const select = (i: number) => {
      e.preventDefault();
      const row = rows[Math.max(0, Math.min(rows.length - 1, i))];
      if (row) setSelectedKey(row.node.key);
    };
    if (e.key === 'ArrowDown') select(activeIndex + 1);
    else if (e.key === 'ArrowUp') select(activeIndex - 1);
    else if (e.key === 'Home') select(0);
    else if (e.key === 'End') select(rows.length - 1);
    else if (e.key === 'ArrowRight' && current?.hasChildren && !current.open) {
      e.preventDefault();
      toggle(current.node);
    } else if (e.key === 'ArrowLeft' && current) {
      e.preventDefault();
      if (current.open) toggle(current.node);
      else {
        const parent = index.get(current.node.key)?.parent;
        if (parent) setSelectedKey(parent.key);
      }
    } else if (e.key === 'Enter' && current?.node.deviceId) {
      e.preventDefault();
      onOpenDevice(current.node.deviceId);
    }
  };

  const kill = async (node: TreeNode) => {
    if (node.pid === null) return;
    const r = await client.call('killProcess', { pid: node.pid });
    if (!r.ok) {
      setNotice({ tone: 'err', text: `Kill failed: ${r.error.message}` });
      return;
    }
    setNotice({ tone: 'ok', text: `Killed ${node.name} <${node.pid}>; waiting for its supervisor…` });
    setKillWatch({ key: node.key, pid: node.pid, name: node.name });
  };

  const restartChild = async (node: TreeNode, parent: TreeNode) => {
    if (parent.pid === null) return;
    // A device's own supervisor is a dynamic child: the fleet restarts it from its last good state.
    const r =
      node.deviceId !== undefined && node.childId === node.deviceId
        ? await client.call('restartDevice', { id: node.deviceId })
        : await client.call('restartChild', { supervisorPid: parent.pid, childId: node.childId });
    setNotice(
      r.ok
        ? { tone: 'ok', text: `Restarted ${node.name}.` }
        : { tone: 'err', text: `Restart failed: ${r.error.message}` },
    );
  };

  // OTP's terminate_child: the supervisor stops it with its shutdown policy and keeps its spec.
  const terminate = async (node: TreeNode, parent: TreeNode) => {
    if (parent.pid === null) return;
    const who = `${node.name}${node.pid !== null ? ` <${node.pid}>` : ''}`;
    const r = await client.call('terminateChild', { supervisorPid: parent.pid, childId: node.childId });
    setNotice(
      r.ok
        ? {
            tone: 'ok',
            text: `Terminated ${who}: ${parent.name} stopped it and keeps it stopped until restarted.`,
          }
        : { tone: 'err', text: `Terminate failed: ${r.error.message}` },
    );
  };

  // A running child restarted by hand, as OTP does it: terminate_child, then restart_child.
  const restartRunning = async (node: TreeNode, parent: TreeNode) => {
    if (parent.pid === null) return;
    const who = `${node.name}${node.pid !== null ? ` <${node.pid}>` : ''}`;
    const stopped = await client.call('terminateChild', { supervisorPid: parent.pid, childId: node.childId });
    if (!stopped.ok) {
      setNotice({ tone: 'err', text: `Restart failed: ${stopped.error.message}` });
      return;
    }
    const r = await client.call('restartChild', { supervisorPid: parent.pid, childId: node.childId });
    setNotice(
      r.ok
        ? {
            tone: 'ok',
            text: `Restarted ${who}: ${parent.name} stopped it and started it again${r.value.pid !== null ? ` as <${r.value.pid}>` : ''}.`,
          }
        : { tone: 'err', text: `Stopped ${who}, but starting it again failed: ${r.error.message}` },
    );
  };

  const carryOut = (a: Ask) => {
    setAsk(null);
    if (a.action === 'kill') void kill(a.node);
    else if (a.parent && a.action === 'terminate') void terminate(a.node, a.parent);
    else if (a.parent) void restartRunning(a.node, a.parent);
  };

  if (!ready) return <Waiting what="the supervision tree" />;
  if (!tree) return <Empty title="No supervision tree">The host has not reported its processes yet.</Empty>;

  return (
    <div className="view tree">
      <div className="toolbar">
        <input
          ref={searchRef}
          type="search"
          className="filter-text"
          placeholder="Find a device, process or <pid>  ( / )"
          aria-label="Find in the tree"
          value={query}
          onChange={(e) => {
            setQuery(e.target.value);
            setMatchIndex(0);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Enter') {
              e.preventDefault();
              if (matches.length > 0) {
                if (pendingReveal.current !== undefined) {
                  // Enter before the typed reveal: reveal the first match now, once.
                  cancelTypedReveal();
                  typedReveal.current = null;
                  setMatchIndex(0);
                  reveal(matches[0]!.key);
                  return;
                }
                const typed = typedReveal.current !== null && typedReveal.current === selectedKey;
                typedReveal.current = null;
                const step = e.shiftKey ? -1 : selectedKey === matches[matchIndex]?.key && !typed ? 1 : 0;
                jump(step);
              }
            }
          }}
          data-testid="tree-search"
        />
        {query ? (
          <span className="muted small-text">
            {matches.length === 0
              ? 'no match'
              : `${Math.min(matchIndex + 1, matches.length)} of ${matches.length}${matches.length >= 200 ? '+' : ''} · Enter for next`}
          </span>
        ) : null}
        <span className="spacer" />
        <button type="button" className="btn ghost small" onClick={() => setToggled(new Set())}>
          Reset folding
        </button>
        <TreeLegend />
      </div>
      {notice ? (
        <div className={`banner ${notice.tone}`} role="status" data-testid="tree-notice">
          {notice.text}
          <button
            type="button"
            className="btn ghost small"
            onClick={() => setNotice(null)}
            aria-label="Dismiss"
          >
            ✕
          </button>
        </div>
      ) : null}
      <div className="split">
        <div
          className="tree-scroll"
          ref={win.ref}
          role="tree"
          tabIndex={0}
          aria-label="Supervision tree"
          aria-activedescendant={selectedKey && activeIndex >= 0 ? `tree-${activeIndex}` : undefined}
          onKeyDown={onKeyDown}
        >
          <div style={{ height: win.totalHeight, position: 'relative' }}>
            <div style={{ transform: `translateY(${win.offset}px)` }}>
              {rows.slice(win.start, win.end).map((r, i) => {
                const n = r.node;
                const rowIndex = win.start + i;
                return (
                  // biome-ignore lint/a11y/useKeyWithClickEvents: the tree's onKeyDown handles the keyboard for the active node
                  <div
                    key={n.key}
                    id={`tree-${rowIndex}`}
                    role="treeitem"
                    aria-level={r.depth + 1}
                    aria-expanded={r.hasChildren ? r.open : undefined}
                    aria-selected={n.key === selectedKey}
                    className={`tree-row status-${n.status}${n.key === selectedKey ? ' selected' : ''}`}
                    style={{ paddingLeft: 6 + r.depth * INDENT }}
                    data-testid="tree-node"
                    data-key={n.key}
                    data-status={n.status}
                    data-restarts={n.restarts}
                    onClick={() => {
                      cancelTypedReveal();
                      setSelectedKey(n.key);
                    }}
                    onDoubleClick={() => (r.hasChildren ? toggle(n) : n.deviceId && onOpenDevice(n.deviceId))}
                  >
                    {r.hasChildren ? (
                      <button
                        type="button"
                        className="caret"
                        tabIndex={-1}
                        aria-label={r.open ? 'Close' : 'Open'}
                        onClick={(e) => {
                          e.stopPropagation();
                          toggle(n);
                        }}
                      >
                        {r.open ? '▾' : '▸'}
                      </button>
                    ) : (
                      <span className="caret" />
                    )}
                    <StatusDot status={n.status} />
                    <span className={`node-type type-${n.type}`} title={n.type}>
                      {n.type === 'supervisor' ? 'sup' : n.type === 'worker' ? 'wrk' : 'app'}
                    </span>
                    <span className="node-name mono">{n.name}</span>
                    {n.pid !== null ? <span className="muted mono small-text">&lt;{n.pid}&gt;</span> : null}
                    {n.state ? <StateBadge state={n.state} testId="tree-state" /> : null}
                    {!n.state && !r.open && n.deviceId ? <ChildState node={n} /> : null}
                    {n.reason && n.status !== 'running' && n.status !== 'restarting' ? (
                      <span className="node-reason" title={n.reason} data-testid="tree-reason">
                        {n.reason}
                      </span>
                    ) : null}
                    <span className="spacer" />
                    {n.strategy ? <span className="tag">{n.strategy}</span> : null}
                    {n.restartType ? <span className="tag muted">{n.restartType}</span> : null}
                    {n.intensity ? (
                      <span
                        className={`tag intensity${n.intensity.restartsInWindow >= n.intensity.maxRestarts ? ' over' : n.intensity.restartsInWindow > 0 ? ' warm' : ''}`}
                        title="restarts in the window / most allowed"
                      >
                        {formatIntensity(n.intensity)}
                      </span>
                    ) : null}
                    <span className={`restarts${n.restarts > 0 ? ' strong' : ' muted'}`} title="restarts">
                      ↻ {n.restarts}
                    </span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
        <aside className="node-detail" aria-label="Selected process">
          {selected ? (
            <ProcessPanel
              node={selected.node}
              parent={selected.parent}
              lastPid={lastPids.current.get(selected.node.key) ?? null}
              actions={{
                onKill: () => setAsk({ action: 'kill', node: selected.node, parent: selected.parent }),
                onTerminate: () =>
                  setAsk({ action: 'terminate', node: selected.node, parent: selected.parent }),
                onRestart: () => {
                  const { node, parent } = selected;
                  if (node.status === 'running') setAsk({ action: 'restart', node, parent });
                  else if (parent) void restartChild(node, parent);
                },
                onOpenDevice,
              }}
            />
          ) : (
            <Empty title="Select a process">Its supervisor, restart policy and intensity show here.</Empty>
          )}
        </aside>
      </div>
      <ConfirmDialog
        open={ask !== null}
        title={ask ? `${ASK_VERB[ask.action]} ${ask.node.name} <${ask.node.pid ?? ''}>?` : ''}
        confirmLabel={ask ? ASK_VERB[ask.action] : ''}
        onConfirm={() => ask && carryOut(ask)}
        onCancel={() => setAsk(null)}
      >
        {ask ? <AskConsequence ask={ask} /> : null}
      </ConfirmDialog>
    </div>
  );
}

/** A closed device subtree shows its machine's state, so the closed list still reads like the fleet. */
function ChildState({ node }: { readonly node: TreeNode }) {
  const state = node.children?.find((c) => c.state !== undefined)?.state;
  return state ? <StateBadge state={state} testId="tree-child-state" /> : null;
}

function flip(set: Set<string>, node: TreeNode) {
  // `toggled` stores departures from the default, so resetting is clearing the set.
  if (set.has(node.key)) set.delete(node.key);
  else set.add(node.key);
}

type Ask = {
  readonly action: 'kill' | 'terminate' | 'restart';
  readonly node: TreeNode;
  readonly parent: TreeNode | null;
};

const ASK_VERB = { kill: 'Kill', terminate: 'Terminate', restart: 'Restart' } as const;

/** What the confirmed action will cause, said before it is done. */
function AskConsequence({ ask }: { readonly ask: Ask }) {
  const { node, parent } = ask;
  const sup = parent?.name ?? 'its supervisor';
  if (ask.action === 'kill')
    return (
      <>
        The process exits with reason <code>killed</code>. {killConsequence(node, parent)}
      </>
    );
  if (ask.action === 'terminate')
    return (
      <>
        {sup} stops it (<code>shutdown</code>, within its shutdown time) and does not restart it: it stays in
        the tree, stopped, until restarted.
        {node.restartType === 'temporary'
          ? ' A temporary child: its spec is dropped and it leaves the tree.'
          : ''}
      </>
    );
  return (
    <>
      {sup} stops it (<code>shutdown</code>) and starts it again under a new pid, as OTP's terminate_child
      then restart_child: a clean stop, not counted against {sup}'s restart intensity.
      {node.deviceId ? ' A device machine resumes from its last good state.' : ''}
    </>
  );
}

function TreeLegend() {
  return (
    <span className="legend small-text">
      {(['running', 'restarting', 'failed', 'stopped'] as const).map((s) => (
        <span key={s}>
          <StatusDot status={s} /> {s}
        </span>
      ))}
    </span>
  );
}
