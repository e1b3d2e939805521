/**
 * What killing a process from the tree will do, and what it did. Before: the consequence read
 * from the node's restart type and its supervisor's intensity (one more restart than allowed
 * makes the supervisor give up). After: the outcome read from the next trees — restarted under a
 * new pid, not restarted (with the reason), or the supervisor gave up (with its reason) — so the
 * banner says what happened rather than what usually happens.
 *
 * @example
 * const watch = { key: node.key, pid: node.pid, name: node.name };
 * killOutcome(watch, nextTree); // null while waiting, else { tone: 'ok', text: 'restarted as <42>' }
 */
import type { TreeNode } from '../../../src/host/contract.js';
import { pathTo } from './tree-flatten.js';

export interface KillWatch {
  readonly key: string;
  readonly pid: number;
  readonly name: string;
}

export interface KillOutcome {
  readonly tone: 'ok' | 'err';
  readonly text: string;
}

/** One sentence: what a kill of `node` under `parent` is going to cause. */
export function killConsequence(node: TreeNode, parent: TreeNode | null): string {
  if (!parent) return 'This is the root: killing it stops the app.';
  if (node.restartType === 'temporary')
    return `${node.name} is a temporary child: ${parent.name} does not restart it.`;
  const i = parent.intensity;
  if (i && i.restartsInWindow + 1 > i.maxRestarts)
    return `${parent.name} has already restarted ${i.restartsInWindow} of at most ${i.maxRestarts} times within ${Math.round(i.periodMs / 1000)} s: one more makes it give up, stop its other children and exit (shutdown: reached_max_restart_intensity).`;
  return `${parent.name} restarts it (${node.restartType ?? 'permanent'}; killed is an abnormal exit)${i ? `, counting one restart against its intensity (${i.restartsInWindow + 1} of ${i.maxRestarts} within ${Math.round(i.periodMs / 1000)} s)` : ''}.`;
}

/** The outcome of a kill as seen in `tree`, or null while it is still under way. */
export function killOutcome(watch: KillWatch, tree: TreeNode | null): KillOutcome | null {
  if (!tree) return null;
  const killed = `${watch.name} <${watch.pid}>`;
  const path = pathTo(tree, (n) => n.key === watch.key);
  const node = path?.at(-1);
  if (node) {
    if (node.status === 'restarting' || node.pid === watch.pid) return null;
    if (node.status === 'running' && node.pid !== null)
      return { tone: 'ok', text: `Killed ${killed}; its supervisor restarted it as <${node.pid}>.` };
    return {
      tone: 'err',
      text: `Killed ${killed}; it was not restarted${node.reason ? `: ${node.reason}` : ''}.`,
    };
  }
  // The node is gone: an ancestor that failed (a supervisor that gave up) says why.
  const failed = deepestAncestor(tree, watch.key);
  if (failed && failed.status !== 'running')
    return {
      tone: 'err',
      text: `Killed ${killed}; its supervisor ${failed.name} gave up and is ${failed.status}${failed.reason ? `: ${failed.reason}` : ''}.`,
    };
  return { tone: 'err', text: `Killed ${killed}; its supervisor did not keep it (a temporary child).` };
}

/** The deepest node whose key is a prefix of `key` (its ancestors that are still shown). */
function deepestAncestor(tree: TreeNode, key: string): TreeNode | undefined {
  let found: TreeNode | undefined;
  let node: TreeNode | undefined = tree;
  while (node) {
    found = node;
    node = node.children?.find((c) => key === c.key || key.startsWith(`${c.key}/`));
    if (node?.key === key) break;
  }
  return found;
}
