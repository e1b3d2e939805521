/**
 * The supervision tree as the API shows it, read from the running supervisors: every child with
 * its status, restart type, restart count, the reason its last process ended, and per supervisor
 * its strategy and intensity. Like OTP's which_children, children that do not run stay in the
 * tree (`stopped` or `failed`, with the reason); a device whose own supervisor gave up — which its
 * dynamic parent drops, as OTP's simple_one_for_one does — is kept from the fleet's record,
 * marked `failed` with the fleet's reason.
 *
 * @example
 * const root = buildTree({ fleet, root: app.supervisor });
 * const found = findProcess({ fleet, root: app.supervisor }, 42); // { process, parent, info }
 */
import type { Fleet } from '../../devices/fleet.js';
import { formatExitReason, isGaveUp } from '../../runtime/exit-reason.js';
import { MachineProcess } from '../../runtime/machine-process.js';
import type { Process } from '../../runtime/process.js';
import type { ChildInfo, SupervisorLike } from '../../runtime/supervisor.js';
import type { ProcessStatus, TreeNode } from '../contract.js';

export interface TreeSources {
  readonly fleet: Fleet;
  /** The app's root supervisor: the tree's root. */
  readonly root: SupervisorLike;
}

export const ROOT_KEY = 'fleetvisor';

export function isSupervisor(p: Process): p is SupervisorLike {
  return p.kind === 'supervisor' && typeof (p as Partial<SupervisorLike>).whichChildren === 'function';
}

/** OTP shows a child that does not run as `undefined`; we say whether its last exit was a failure. */
export function statusOf(info: Pick<ChildInfo, 'status' | 'lastExit'>): ProcessStatus {
  if (info.status === 'running') return 'running';
  if (info.status === 'restarting') return 'restarting';
  const last = info.lastExit;
  return last && (last.type === 'error' || last.type === 'killed' || isGaveUp(last)) ? 'failed' : 'stopped';
}

export function buildTree(src: TreeSources): TreeNode {
  const r = src.root;
  const base = {
    key: ROOT_KEY,
    pid: r.pid,
    name: r.name,
    childId: ROOT_KEY,
    restarts: 0,
    status: (r.alive ? 'running' : 'stopped') as ProcessStatus,
    ...(r.exitReason ? { reason: formatExitReason(r.exitReason) } : {}),
  };
  return supervisorNode(src, r, base, undefined);
}

function node(src: TreeSources, parentKey: string, info: ChildInfo, deviceId: string | undefined): TreeNode {
  const p = info.process;
  const key = `${parentKey}/${info.id}`;
  const base = {
    key,
    pid: p?.pid ?? null,
    name: p?.name ?? info.id,
    childId: info.id,
    restartType: info.restart,
    restarts: info.restartCount,
    status: statusOf(info),
    ...(info.lastExit ? { reason: formatExitReason(info.lastExit) } : {}),
  };
  const dev = deviceId ?? (p?.name.startsWith('device:') ? p.name.slice(7) : undefined);
  if (p && isSupervisor(p)) return supervisorNode(src, p, base, dev);
  return {
    ...base,
    type: info.type === 'supervisor' ? 'supervisor' : 'worker',
    ...(dev ? { deviceId: dev } : {}),
    ...(p instanceof MachineProcess && p.alive ? { state: p.state } : {}),
  };
}

function supervisorNode(
  src: TreeSources,
  s: SupervisorLike,
  base: Omit<TreeNode, 'type'>,
  deviceId: string | undefined,
): TreeNode {
  const n: TreeNode = {
    ...base,
    type: 'supervisor',
    strategy: s.strategy,
    intensity: { restartsInWindow: s.restartsInWindow(), maxRestarts: s.maxRestarts, periodMs: s.periodMs },
    ...(deviceId ? { deviceId } : {}),
    children: s.alive ? s.whichChildren().map((c) => node(src, base.key, c, deviceId)) : [],
  };
  return s.pid === src.fleet.supervisor.pid ? nestUnderParents(src.fleet, withDownDevices(src.fleet, n)) : n;
}

/**
 * The fleet's devices whose supervisor is gone (gave up, or stopped) are not children of the
 * dynamic `devices` supervisor any more: shown from the fleet's record, with its reason.
 */
function withDownDevices(fleet: Fleet, devices: TreeNode): TreeNode {
  const children = devices.children ?? [];
  const shown = new Set(children.map((c) => c.deviceId));
  const down: TreeNode[] = [];
  for (const d of fleet.list()) {
    if (shown.has(d.id) || d.health === 'running') continue;
    down.push({
      key: `${devices.key}/${d.id}`,
      pid: null,
      name: `device:${d.id}`,
      childId: d.id,
      type: 'supervisor',
      status: d.health === 'failed' ? 'failed' : 'stopped',
      reason: d.failure ? `${d.failure.code}: ${d.failure.message}` : 'stopped',
      restartType: 'transient',
      restarts: d.restarts,
      deviceId: d.id,
      children: [],
    });
  }
  return down.length === 0 ? devices : { ...devices, children: [...children, ...down] };
}

/**
 * Devices that report a `parent` (a Sparkplug device under its edge node) are shown inside their
 * parent's node, after its own children. Supervision itself stays per device: the bridge takes a
 * node's devices down when the node dies, and the key keeps the device's own path.
 */
function nestUnderParents(fleet: Fleet, devicesNode: TreeNode): TreeNode {
  const children = devicesNode.children ?? [];
  const parentOf = (n: TreeNode): string | undefined => {
    const parent = n.deviceId ? fleet.device(n.deviceId)?.status.parent : undefined;
    return typeof parent === 'string' && parent !== n.deviceId ? parent : undefined;
  };
  const byDevice = new Map(children.filter((c) => c.deviceId).map((c) => [c.deviceId!, c]));
  const adopted = new Map<string, TreeNode[]>();
  for (const c of children) {
    const parent = parentOf(c);
    if (parent && byDevice.has(parent)) adopted.set(parent, [...(adopted.get(parent) ?? []), c]);
  }
  if (adopted.size === 0) return devicesNode;
  const nested = children
    .filter((c) => !(parentOf(c) && byDevice.has(parentOf(c)!)))
    .map((c) =>
      c.deviceId && adopted.has(c.deviceId)
        ? { ...c, children: [...(c.children ?? []), ...adopted.get(c.deviceId)!] }
        : c,
    );
  return { ...devicesNode, children: nested };
}

export interface FoundProcess {
  readonly process: Process;
  /** Its supervisor and its entry there; none for the root. */
  readonly parent: SupervisorLike | undefined;
  readonly info: ChildInfo | undefined;
}

/** The running process `pid` anywhere under the root. */
export function findProcess(src: TreeSources, pid: number): FoundProcess | undefined {
  const walk = (s: SupervisorLike): FoundProcess | undefined => {
    for (const c of s.whichChildren()) {
      if (!c.process?.alive) continue;
      if (c.process.pid === pid) return { process: c.process, parent: s, info: c };
      if (isSupervisor(c.process)) {
        const found = walk(c.process);
        if (found) return found;
      }
    }
    return undefined;
  };
  if (!src.root.alive) return undefined;
  if (src.root.pid === pid) return { process: src.root, parent: undefined, info: undefined };
  return walk(src.root);
}

/** Running processes under (and including) `s`. */
export function countProcesses(s: SupervisorLike): number {
  if (!s.alive) return 0;
  let n = 1;
  for (const c of s.whichChildren()) {
    if (!c.process?.alive) continue;
    n += isSupervisor(c.process) ? countProcesses(c.process) : 1;
  }
  return n;
}
