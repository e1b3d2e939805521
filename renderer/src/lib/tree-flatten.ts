/**
 * The supervision tree as rows for a virtualized list: only the visible nodes, in order, with
 * their depth. Infrastructure (the app, its supervisors) is open by default; everything from a
 * device's node down is closed by default, so a fleet of thousands shows one row per device until
 * the operator opens one. `toggled` holds the keys the operator flipped from that default.
 *
 * @example
 * const rows = flattenVisible(tree, toggled);   // [{ node, depth: 0, open: true, … }, …]
 * const path = pathTo(tree, (n) => n.deviceId === 'pump-7'); // root … device node
 */
import type { TreeNode } from '../../../src/host/contract.js';

export interface FlatNode {
  readonly node: TreeNode;
  readonly depth: number;
  readonly open: boolean;
  readonly hasChildren: boolean;
}

export function openByDefault(node: TreeNode): boolean {
  return node.deviceId === undefined;
}

export function isOpen(node: TreeNode, toggled: ReadonlySet<string>): boolean {
  return openByDefault(node) !== toggled.has(node.key);
}

export function flattenVisible(root: TreeNode | null, toggled: ReadonlySet<string>): FlatNode[] {
  const out: FlatNode[] = [];
  if (!root) return out;
  // Iterative: a deep or wide tree must not blow the stack.
  const stack: { node: TreeNode; depth: number }[] = [{ node: root, depth: 0 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    const children = node.children ?? [];
    const open = children.length > 0 && isOpen(node, toggled);
    out.push({ node, depth, open, hasChildren: children.length > 0 });
    if (open)
      for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]!, depth: depth + 1 });
  }
  return out;
}

/** Root → the first node (depth first) that matches, or null. */
export function pathTo(root: TreeNode | null, match: (node: TreeNode) => boolean): TreeNode[] | null {
  if (!root) return null;
  const path: TreeNode[] = [];
  const visit = (node: TreeNode): boolean => {
    path.push(node);
    if (match(node)) return true;
    for (const child of node.children ?? []) if (visit(child)) return true;
    path.pop();
    return false;
  };
  return visit(root) ? path : null;
}

export interface IndexedNode {
  readonly node: TreeNode;
  readonly parent: TreeNode | null;
}

export function indexTree(root: TreeNode | null): Map<string, IndexedNode> {
  const index = new Map<string, IndexedNode>();
  if (!root) return index;
  const stack: IndexedNode[] = [{ node: root, parent: null }];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    index.set(entry.node.key, entry);
    for (const child of entry.node.children ?? []) stack.push({ node: child, parent: entry.node });
  }
  return index;
}

/** Nodes whose name, child id, device id or pid contains the query (case-insensitive), in tree order. */
export function searchTree(root: TreeNode | null, query: string, limit = 200): TreeNode[] {
  const q = query.trim().toLowerCase();
  if (!root || q === '') return [];
  const out: TreeNode[] = [];
  const stack: TreeNode[] = [root];
  while (stack.length > 0 && out.length < limit) {
    const node = stack.pop()!;
    if (
      node.name.toLowerCase().includes(q) ||
      node.childId.toLowerCase().includes(q) ||
      (node.deviceId?.toLowerCase().includes(q) ?? false) ||
      (node.pid !== null && `<${node.pid}>` === q.replace(/^<?/, '<').replace(/>?$/, '>'))
    )
      out.push(node);
    const children = node.children ?? [];
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return out;
}

/** Counts by status under a node (for a supervisor's summary). */
export function countStatuses(node: TreeNode): Record<string, number> {
  const counts: Record<string, number> = {};
  const stack: TreeNode[] = [...(node.children ?? [])];
  while (stack.length > 0) {
    const n = stack.pop()!;
    counts[n.status] = (counts[n.status] ?? 0) + 1;
    for (const child of n.children ?? []) stack.push(child);
  }
  return counts;
}
