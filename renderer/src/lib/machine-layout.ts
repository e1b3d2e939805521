/**
 * Lays a {@link MachineView} out for an SVG diagram: a layered layout per level of nesting —
 * siblings ranked by breadth-first distance from the initial state (left → right at the top
 * level, top → bottom inside a parent, alternating), compound states drawn around their
 * children — and transitions as edges: forward ones straight, backward ones as arcs under the
 * boxes. Edges between the same two states share one arrow with one label line per event; when
 * every child of a parent leaves on the same event to the same place, one arrow leaves the parent.
 *
 * Pure and DOM-free (text width is estimated), so it is cheap to memoize on the machine.
 *
 * @example
 * const layout = layoutMachine(detail.machine);
 * layout.boxes;  // [{ path: 'connected', x, y, w, h, … }]
 * layout.edges;  // [{ d: 'M … L …', labels: ['HELLO'], labelX, labelY, … }]
 */
import type { MachineStateView, MachineView } from '../../../src/host/contract.js';

export interface Box {
  readonly path: string;
  readonly label: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly depth: number;
  readonly compound: boolean;
  readonly initial: boolean;
}

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly d: string;
  readonly labels: readonly string[];
  readonly labelX: number;
  readonly labelY: number;
  readonly anchor: 'start' | 'middle' | 'end';
  readonly kind: 'forward' | 'back' | 'self';
}

export interface MachineLayout {
  readonly width: number;
  readonly height: number;
  readonly boxes: readonly Box[];
  readonly edges: readonly Edge[];
}

const CHAR_W = 6.8;
const LEAF_H = 32;
const LEAF_MIN_W = 92;
const HEADER_H = 24;
const PAD = 12;
const RANK_GAP_LR = 84;
const RANK_GAP_TB = 30;
const STACK_GAP = 18;
const MARGIN = 14;
const LINE_H = 13;

type Direction = 'LR' | 'TB';
interface Sized {
  readonly state: MachineStateView;
  readonly w: number;
  readonly h: number;
  /** Children positioned relative to this box's top-left. */
  readonly children: readonly Placed[];
}
interface Placed extends Sized {
  readonly x: number;
  readonly y: number;
}

export function lastSegment(path: string): string {
  const i = path.lastIndexOf('.');
  return i < 0 ? path : path.slice(i + 1);
}

/** `xstate.after.connectTimeout.device.connecting` → `after connectTimeout`. */
export function prettyEvent(event: string): string {
  const after = /^xstate\.after\.([^.]+)/.exec(event);
  if (after) {
    const delay = after[1]!;
    return /^\d+$/.test(delay) ? `after ${Number(delay) / 1000} s` : `after ${delay}`;
  }
  if (event.startsWith('xstate.done.state.')) return 'done';
  return event;
}

/** Strips the machine id prefix and a leading `#`, so `#device.connected` and `connected` compare equal. */
export function normalizePath(path: string, machineId: string): string {
  const p = path.startsWith('#') ? path.slice(1) : path;
  return p.startsWith(`${machineId}.`) ? p.slice(machineId.length + 1) : p;
}

export function layoutMachine(machine: MachineView): MachineLayout {
  const all = new Map<string, MachineStateView>();
  const parentOf = new Map<string, string | null>();
  const walk = (states: readonly MachineStateView[], parent: string | null) => {
    for (const s of states) {
      const path = normalizePath(s.path, machine.id);
      all.set(path, s);
      parentOf.set(path, parent);
      walk(s.children, path);
    }
  };
  walk(machine.states, null);
  const pathOf = (s: MachineStateView) => normalizePath(s.path, machine.id);
  const resolve = (target: string, source: string) =>
    resolveTarget(target, source, all, machine.id, parentOf);

  // Sibling-level edges, for ranking: a transition from a descendant counts for its ancestor.
  const ancestorIn = (path: string, siblings: ReadonlySet<string>): string | null => {
    let p: string | null = path;
    while (p !== null) {
      if (siblings.has(p)) return p;
      p = parentOf.get(p) ?? null;
    }
    return null;
  };
  const transitionsUnder = (s: MachineStateView): { from: string; to: string | null }[] => {
    const out: { from: string; to: string | null }[] = [];
    const visit = (n: MachineStateView) => {
      for (const t of n.transitions)
        out.push({ from: pathOf(n), to: t.target ? resolve(t.target, pathOf(n)) : null });
      n.children.forEach(visit);
    };
    visit(s);
    return out;
  };

  const sizeGroup = (
    states: readonly MachineStateView[],
    dir: Direction,
  ): { w: number; h: number; placed: Placed[] } => {
    const sized = states.map((s) => sizeState(s, dir === 'LR' ? 'TB' : 'LR'));
    const paths = new Set(states.map(pathOf));
    const adjacency = new Map<string, Set<string>>();
    for (const s of states) {
      const targets = new Set<string>();
      for (const t of transitionsUnder(s)) {
        if (t.to === null) continue;
        const to = ancestorIn(t.to, paths);
        if (to && to !== pathOf(s)) targets.add(to);
      }
      adjacency.set(pathOf(s), targets);
    }
    const rank = new Map<string, number>();
    const start = states.find((s) => s.initial) ?? states[0];
    if (start) {
      const queue = [pathOf(start)];
      rank.set(pathOf(start), 0);
      while (queue.length > 0) {
        const p = queue.shift()!;
        for (const q of adjacency.get(p) ?? []) {
          if (!rank.has(q)) {
            rank.set(q, rank.get(p)! + 1);
            queue.push(q);
          }
        }
      }
    }
    let extra = Math.max(-1, ...rank.values()) + 1;
    for (const s of states) if (!rank.has(pathOf(s))) rank.set(pathOf(s), extra++);

    const ranks: Sized[][] = [];
    for (const s of sized) {
      const r = rank.get(pathOf(s.state))!;
      ranks[r] = [...(ranks[r] ?? []), s];
    }
    const layers = ranks.filter((r) => r && r.length > 0);
    const along = (s: Sized) => (dir === 'LR' ? s.w : s.h);
    const across = (s: Sized) => (dir === 'LR' ? s.h : s.w);
    const gap = dir === 'LR' ? RANK_GAP_LR : RANK_GAP_TB;
    const layerAlong = layers.map((l) => Math.max(...l.map(along)));
    const layerAcross = layers.map(
      (l) => l.reduce((sum, s) => sum + across(s), 0) + STACK_GAP * (l.length - 1),
    );
    const totalAcross = Math.max(0, ...layerAcross);
    const placed: Placed[] = [];
    let pos = 0;
    layers.forEach((layer, i) => {
      let off = (totalAcross - layerAcross[i]!) / 2;
      for (const s of layer) {
        const a = pos + (layerAlong[i]! - along(s)) / 2;
        placed.push(dir === 'LR' ? { ...s, x: a, y: off } : { ...s, x: off, y: a });
        off += across(s) + STACK_GAP;
      }
      pos += layerAlong[i]! + gap;
    });
    const totalAlong = Math.max(0, pos - gap);
    return dir === 'LR'
      ? { w: totalAlong, h: totalAcross, placed }
      : { w: totalAcross, h: totalAlong, placed };
  };

  const sizeState = (state: MachineStateView, childDir: Direction): Sized => {
    const labelW = lastSegment(pathOf(state)).length * CHAR_W + 28;
    if (state.children.length === 0)
      return { state, w: Math.max(LEAF_MIN_W, labelW), h: LEAF_H, children: [] };
    const group = sizeGroup(state.children, childDir);
    const children = group.placed.map((p) => ({ ...p, x: p.x + PAD, y: p.y + HEADER_H }));
    return { state, w: Math.max(labelW, group.w + PAD * 2), h: group.h + HEADER_H + PAD, children };
  };

  const top = sizeGroup(machine.states, 'LR');
  const boxes: Box[] = [];
  const emit = (p: Placed, ox: number, oy: number, depth: number) => {
    const path = pathOf(p.state);
    boxes.push({
      path,
      label: lastSegment(path),
      x: ox + p.x,
      y: oy + p.y,
      w: p.w,
      h: p.h,
      depth,
      compound: p.state.children.length > 0,
      initial: p.state.initial,
    });
    for (const c of p.children) emit(c, ox + p.x, oy + p.y, depth + 1);
  };
  // A top-level state with a self-transition draws its loop and label above itself: make room.
  const loopLines = Math.max(
    0,
    ...machine.states.map(
      (st) =>
        st.transitions.filter((t) => t.target === null || resolve(t.target, pathOf(st)) === pathOf(st))
          .length,
    ),
  );
  const top0 = MARGIN + (loopLines > 0 ? 30 + loopLines * LINE_H : 0);
  for (const p of top.placed) emit(p, MARGIN, top0, 0);
  const boxOf = new Map(boxes.map((b) => [b.path, b]));

  // Edges: collect, lift shared child exits to the parent, merge by (from, to).
  type Raw = { from: string; to: string | null; event: string };
  let raw: Raw[] = [];
  for (const [path, s] of all)
    for (const t of s.transitions) {
      // No target: an internal transition, drawn as a loop. A target we cannot place (several
      // targets at once, a state outside this machine) is left out rather than drawn wrong.
      const to = t.target ? resolve(t.target, path) : null;
      if (t.target && to === null) continue;
      raw.push({ from: path, to, event: prettyEvent(t.event) });
    }
  for (const [path, s] of all) {
    if (s.children.length < 2) continue;
    const childPaths = s.children.map(pathOf);
    const inside = (p: string | null) => p !== null && (p === path || p.startsWith(`${path}.`));
    const shared = raw.filter((r) => r.from === childPaths[0] && r.to !== null && !inside(r.to));
    for (const candidate of shared) {
      const same = (r: Raw) => r.event === candidate.event && r.to === candidate.to;
      if (!childPaths.every((c) => raw.some((r) => r.from === c && same(r)))) continue;
      raw = raw.filter((r) => !(childPaths.includes(r.from) && same(r)));
      raw.push({ from: path, to: candidate.to, event: candidate.event });
    }
  }
  const merged = new Map<string, { from: string; to: string; labels: string[] }>();
  for (const r of raw) {
    const to = r.to ?? r.from;
    if (!boxOf.has(r.from) || !boxOf.has(to)) continue;
    const key = `${r.from}\u0000${to}`;
    const m = merged.get(key) ?? { from: r.from, to, labels: [] };
    if (!m.labels.includes(r.event)) m.labels.push(r.event);
    merged.set(key, m);
  }

  const edges: Edge[] = [];
  let bottom = top0 + top.h;
  const right = MARGIN + top.w;
  const backArcs: { lo: number; hi: number; bottom: number }[] = [];
  const sorted = [...merged.values()].sort((a, b) => span(a) - span(b));
  function span(e: { from: string; to: string }) {
    const a = boxOf.get(e.from)!;
    const b = boxOf.get(e.to)!;
    return Math.abs(a.x + a.w / 2 - (b.x + b.w / 2));
  }
  for (const e of sorted) {
    const a = boxOf.get(e.from)!;
    const b = boxOf.get(e.to)!;
    if (e.from === e.to) {
      // A loop on the box's top edge, label above it.
      const cx = a.x + a.w / 2;
      edges.push({
        ...e,
        d: `M ${cx - 10} ${a.y} C ${cx - 16} ${a.y - 24}, ${cx + 16} ${a.y - 24}, ${cx + 10} ${a.y - 1}`,
        labelX: cx,
        labelY: a.y - 24 - (e.labels.length - 1) * LINE_H,
        anchor: 'middle',
        kind: 'self',
      });
      continue;
    }
    const aCx = a.x + a.w / 2;
    const bCx = b.x + b.w / 2;
    const contains = (outer: Box, inner: Box) =>
      inner.x >= outer.x &&
      inner.y >= outer.y &&
      inner.x + inner.w <= outer.x + outer.w &&
      inner.y + inner.h <= outer.y + outer.h;
    const nested = contains(a, b) || contains(b, a);
    // Where an arrow meets a box's side: a leaf's middle, a parent's middle too (its header is small).
    const midY = (box: Box) => box.y + box.h / 2;
    if (!nested && b.x >= a.x + a.w - 1) {
      // Forward, left to right: right side of a → left side of b.
      const y1 = midY(a);
      const y2 = midY(b);
      const x1 = a.x + a.w;
      const x2 = b.x;
      const mx = (x1 + x2) / 2;
      edges.push({
        ...e,
        d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`,
        labelX: mx,
        labelY: (y1 + y2) / 2 - 6 - (e.labels.length - 1) * LINE_H,
        anchor: 'middle',
        kind: 'forward',
      });
      continue;
    }
    if (!nested && b.y >= a.y + a.h - 1 && b.x < a.x + a.w && b.x + b.w > a.x) {
      // Forward, top to bottom (inside a parent laid out vertically): a straight drop, label on it.
      const y1 = a.y + a.h;
      const y2 = b.y;
      edges.push({
        ...e,
        d: `M ${aCx} ${y1} L ${bCx} ${y2 - 2}`,
        labelX: (aCx + bCx) / 2,
        labelY: (y1 + y2) / 2 + 4 - ((e.labels.length - 1) * LINE_H) / 2,
        anchor: 'middle',
        kind: 'forward',
      });
      continue;
    }
    // Backward (or into/out of a parent): an arc under both boxes, below any arc it overlaps.
    const x1 = aCx + (aCx > bCx ? -8 : 8);
    const x2 = bCx + (aCx > bCx ? 8 : -8);
    const y1 = a.y + a.h;
    const y2 = b.y + b.h;
    const mid = (x1 + x2) / 2;
    const halfLabel = (Math.max(...e.labels.map((l) => l.length)) * CHAR_W) / 2;
    const lo = Math.min(x1, x2, mid - halfLabel);
    const hi = Math.max(x1, x2, mid + halfLabel);
    const below = backArcs.filter((o) => o.lo < hi && o.hi > lo).map((o) => o.bottom + 8);
    const curveBottom = Math.max(Math.max(y1, y2) + 18, ...below);
    // A cubic whose control points both sit at depthY bottoms out at 0.75·depthY + 0.125·(y1 + y2).
    const depthY = (curveBottom - 0.125 * (y1 + y2)) / 0.75;
    const labelY = curveBottom + 12;
    const labelBottom = labelY + (e.labels.length - 1) * LINE_H + 4;
    backArcs.push({ lo, hi, bottom: labelBottom });
    edges.push({
      ...e,
      d: `M ${x1} ${y1} C ${x1} ${depthY}, ${x2} ${depthY}, ${x2} ${y2 + 2}`,
      labelX: mid,
      labelY,
      anchor: 'middle',
      kind: 'back',
    });
    bottom = Math.max(bottom, labelBottom);
  }
  return { width: right + MARGIN, height: bottom + MARGIN, boxes, edges };
}

function resolveTarget(
  target: string,
  source: string,
  all: ReadonlyMap<string, MachineStateView>,
  machineId: string,
  parentOf: ReadonlyMap<string, string | null>,
): string | null {
  if (target.startsWith('.')) {
    const child = `${source}${target}`;
    if (all.has(child)) return child;
  }
  const t = normalizePath(target, machineId);
  if (all.has(t)) return t;
  const parent = parentOf.get(source) ?? null;
  if (parent !== null && all.has(`${parent}.${t}`)) return `${parent}.${t}`;
  let best: string | null = null;
  for (const path of all.keys())
    if ((path === t || path.endsWith(`.${t}`)) && (best === null || path.length < best.length)) best = path;
  return best;
}
