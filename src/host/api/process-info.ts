/**
 * `processInfo`: one process as Erlang's observer shows it — pid, name, kind, status, restart
 * type, a machine's state, its mailbox length, running timers, what can honestly be said of its
 * memory, how its last process ended (with the error's stack and cause) and its restart timeline
 * ({@link ProcessHistory}, kept from the API's start).
 *
 * What is measured, and what is not: a supervisor's and a server's mailbox is the runtime's own
 * queue; a state machine has none that can fill (xstate handles each event synchronously when it
 * is sent); the MQTT link's is its outbox. JavaScript keeps one heap for every process, so memory
 * is only given for a machine, as the size of the snapshot a restart resumes from.
 *
 * @example
 * const handlers = processInfoHandlers(ctx);
 * await handlers.processInfo({ supervisorPid: 7, childId: 'machine' }, {});
 * // { pid: 8, name: 'pump-7', kind: 'statem', state: 'connected', mailbox: { length: 0, … }, timers: [ … ], timeline: [ … ] }
 */
import type { DeviceView } from '../../devices/fleet.js';
import type { ExitReason } from '../../runtime/exit-reason.js';
import { formatExitReason } from '../../runtime/exit-reason.js';
import { MachineProcess } from '../../runtime/machine-process.js';
import type { Process } from '../../runtime/process.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { ChildInfo, SupervisorLike } from '../../runtime/supervisor.js';
import type { App } from '../app.js';
import type { ParsedArgsOf, ProcessInfo, ProcessLifeEntry, TimerView } from '../contract.js';
import type { ApiContext, Handlers } from './handlers.js';
import { ApiFailure } from './handlers.js';
import { ProcessHistory } from './process-history.js';
import { isSupervisor, statusOf } from './tree.js';

const MACHINE_TIMER_KINDS = new Set(['after', 'state', 'event', 'named']);
/** Stack lines kept in an exit's detail. */
const STACK_LINES = 8;

const fail = (code: string, message: string): never => {
  throw new ApiFailure(code, message);
};

export function processInfoHandlers(ctx: ApiContext) {
  const { app } = ctx;
  const history = new ProcessHistory(app.runtime.events, () => app.runtime.clock.wallNow());
  // The timelines live as long as the app: they are read from its runtime's events.
  void app.supervisor.whenExited().then(() => history.close());
  return {
    processInfo: async (a) => processInfo(ctx, history, a),
  } satisfies Partial<Handlers>;
}

function processInfo(ctx: ApiContext, history: ProcessHistory, a: ParsedArgsOf<'processInfo'>): ProcessInfo {
  const { app } = ctx;
  let process: Process | undefined;
  let parent: SupervisorLike | undefined;
  let info: ChildInfo | undefined;
  if (a.supervisorPid !== undefined && a.childId !== undefined) {
    const sup = ctx.findProcess(a.supervisorPid)?.process;
    if (!sup || !isSupervisor(sup))
      return fail('notFound', `no running supervisor with pid ${a.supervisorPid}`);
    parent = sup;
    info = sup.whichChildren().find((c) => c.id === a.childId);
    if (!info) {
      // A device whose supervisor gave up is dropped by `devices` (simple_one_for_one): the fleet keeps it.
      const device = sup === app.fleet.supervisor ? app.fleet.device(a.childId) : undefined;
      if (device) return downDevice(history, sup, device);
      return fail('notFound', `no child '${a.childId}' in ${sup.name} <${sup.pid}>`);
    }
    process = info.process?.alive ? info.process : undefined;
  } else {
    const found = ctx.findProcess(a.pid!);
    if (!found) {
      const exit = history.exitOf(a.pid!);
      return fail(
        'notFound',
        exit
          ? `<${a.pid}> (${exit.name}) exited: ${exit.reason}; ask for its child by supervisorPid and childId`
          : `no running process with pid ${a.pid}`,
      );
    }
    ({ process, parent, info } = found);
  }
  const name = process?.name ?? (a.pid !== undefined ? history.exitOf(a.pid)?.name : undefined) ?? info!.id;
  const timeline = history.timeline(name);
  const deviceId = deviceOf(name) ?? (parent ? deviceOf(parent.name) : undefined);
  const machine = process instanceof MachineProcess ? process : undefined;
  const lastExit = info ? info.lastExit : process?.exitReason;
  return {
    pid: process?.pid ?? null,
    name,
    kind: process?.kind ?? null,
    type: info?.type === 'supervisor' || (process && isSupervisor(process)) ? 'supervisor' : 'worker',
    status: info ? statusOf(info) : process?.alive ? 'running' : 'stopped',
    supervisor: parent ? { pid: parent.pid, name: parent.name } : null,
    childId: info?.id ?? null,
    ...(info ? { restartType: info.restart } : {}),
    restarts: info?.restartCount ?? 0,
    ...(deviceId !== undefined ? { deviceId } : {}),
    ...(machine ? { state: machine.state, hibernating: machine.isHibernating } : {}),
    mailbox: mailboxOf(app, process),
    timers: timersOf(app.runtime, process),
    memory: memoryOf(process),
    lastExit: lastExit ? lastExitView(lastExit, timeline) : null,
    timeline,
    timelineSince: history.since,
  };
}

/** A failed or stopped device that `devices` no longer holds, from the fleet's record. */
function downDevice(history: ProcessHistory, devices: SupervisorLike, d: DeviceView): ProcessInfo {
  const name = `device:${d.id}`;
  const timeline = history.timeline(name);
  const last = timeline.at(-1);
  return {
    pid: null,
    name,
    kind: null,
    type: 'supervisor',
    status: d.health === 'failed' ? 'failed' : d.health === 'running' ? 'restarting' : 'stopped',
    supervisor: { pid: devices.pid, name: devices.name },
    childId: d.id,
    restartType: 'transient',
    restarts: d.restarts,
    deviceId: d.id,
    mailbox: mailboxOf(undefined, undefined),
    timers: [],
    memory: memoryOf(undefined),
    lastExit: d.failure
      ? {
          reason: `${d.failure.code}: ${d.failure.message}`,
          type: d.failure.code === 'crashLoop' ? 'shutdown' : 'error',
          detail: last ? last.reason : null,
          at: last?.at ?? null,
        }
      : null,
    timeline,
    timelineSince: history.since,
  };
}

const deviceOf = (name: string): string | undefined =>
  name.startsWith('device:') ? name.slice('device:'.length) : undefined;

function mailboxOf(app: App | undefined, p: Process | undefined): ProcessInfo['mailbox'] {
  if (!p) return { length: null, note: 'no running process' };
  if (p instanceof MachineProcess)
    return {
      length: 0,
      note: 'xstate handles each event synchronously as it is sent: none waits',
    };
  const mqtt = app?.links.mqtt;
  if (mqtt && p === (mqtt as unknown as Process)) {
    const s = mqtt.stats();
    return {
      length: s.outboxLength,
      note: `messages waiting to go to the broker; ${s.inflight} sent and not acknowledged, ${s.pendingIngest} received and not stored yet`,
    };
  }
  const length = (p as { mailboxLength?: unknown }).mailboxLength;
  if (typeof length === 'number')
    return {
      length,
      note:
        p.kind === 'supervisor'
          ? 'child exits and calls waiting to be handled'
          : 'messages waiting to be handled',
    };
  return { length: null, note: `this ${p.kind} process keeps no mailbox the host can read` };
}

function timersOf(runtime: Runtime, p: Process | undefined): TimerView[] {
  if (!p?.alive) return [];
  const out: TimerView[] = [];
  const machine = p instanceof MachineProcess ? p : undefined;
  // A machine's own timeouts are listed with the event they send (a hibernated one's too).
  if (machine)
    for (const t of machine.timers())
      out.push({
        kind: t.kind,
        key: t.id,
        event: t.event.type,
        deadline: t.wallDeadlineMs,
        delayMs: t.delayMs,
      });
  for (const t of runtime.timers.ownedBy(p.pid)) {
    if (machine && MACHINE_TIMER_KINDS.has(t.label)) continue;
    out.push({ kind: t.label, key: t.label, event: '', deadline: t.wallDeadlineMs, delayMs: t.delayMs });
  }
  return out.sort((x, y) => x.deadline - y.deadline);
}

function memoryOf(p: Process | undefined): ProcessInfo['memory'] {
  const unmeasurable = {
    bytes: null,
    note: 'not measurable per process: all share one JavaScript heap',
  };
  if (!(p instanceof MachineProcess) || !p.alive) return unmeasurable;
  const state = p.persistedState();
  if (!state) return unmeasurable;
  return {
    bytes: Buffer.byteLength(JSON.stringify(state)),
    note: 'its snapshot as JSON (what a restart resumes from); its heap share is not measurable',
  };
}

function lastExitView(reason: ExitReason, timeline: readonly ProcessLifeEntry[]): ProcessInfo['lastExit'] {
  const text = formatExitReason(reason);
  const seen = timeline.findLast((e) => e.reason === text || e.reason.startsWith(`${text} (`));
  return { reason: text, type: reason.type, detail: detailOf(reason), at: seen?.at ?? null };
}

function detailOf(reason: ExitReason): string | null {
  if (reason.type === 'shutdown') return reason.detail ?? null;
  if (reason.type !== 'error') return null;
  const e = reason.error;
  const lines: string[] = [];
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') lines.push(`code: ${code}`);
  if (e.stack) lines.push(...e.stack.split('\n').slice(0, STACK_LINES));
  else lines.push(e.message);
  if (e.cause !== undefined)
    lines.push(`cause: ${e.cause instanceof Error ? e.cause.message : String(e.cause)}`);
  return lines.join('\n');
}
