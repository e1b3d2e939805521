/**
 * Operations asked on any instance of a cluster, carried out by the instance that owns the device
 * (issue 17 §3, docs/scale-out.md). One mechanism for every kind of operation
 * (src/cluster/routed-ops.ts, a closed union): an operator's action (`act`), cancelling a command,
 * restarting a failed device, sending an event by hand, adopting a discovered device, and the
 * reads only the device's instance can answer (`device`, `deviceInspect`). On a device of a shard
 * this instance leases it runs here as on a single instance; on any other device it goes through
 * PostgreSQL:
 *
 * 1. **Where.** One query reads whether the device is in the fleet (`devices`) and who holds an
 *    unexpired lease on its shard (`fleetvisor_leases`, the database's clock). Unknown device:
 *    `notFound` (not for `adopt`: adopting puts it there). No unexpired lease at all (an
 *    instance is starting or failing over): `noOwner`, at once. The owner is this instance after
 *    all: it runs here.
 * 2. **Ask.** A row of `fleetvisor_routed_actions` (migration 3), `pending`, with the operation
 *    (an action's name and arguments, or `op:<kind>` and its fields), the original actor, the
 *    requester, the owner asked and a deadline (`timeoutMs`, 15 s by default, on the database's
 *    clock), inserted in the same statement that `NOTIFY`s the owner's channel
 *    (`fleetvisor_actions_<hash of its id>`): delivered on commit.
 * 3. **Carry out.** Each instance `LISTEN`s on its channel with a dedicated connection (not the
 *    pool). It claims a row with one `UPDATE … SET status = 'running' WHERE status = 'pending'
 *    AND expires_at > now AND <its unexpired lease on the row's shard> RETURNING …`: two claims
 *    of one row never both succeed, so an operation never runs twice. It reads the operation
 *    back, checked by its kind's schema, and carries it out with the original actor: an action
 *    by the fleet's `act` (`run`), any other kind by the API's own handler of the same name
 *    ({@link CommandRouter.answerWith}) — so what is written (the command log, events, audit
 *    entries) is written by the owner, fenced by its lease as every write of its devices. It
 *    writes the answer (the same `Result` the local call gives, refusals included, in the API's
 *    codes) with `status = 'done'`, and `NOTIFY`s the requester's channel.
 * 4. **Answer.** The requester waits for that notification, reading the row at most every
 *    second as well (a lost connection loses notifications). At the deadline it marks the row
 *    `failed` in one `UPDATE … WHERE status = 'pending'`: from then on nobody can claim it, and
 *    the caller gets `ownerDidNotAnswer` saying it was **not** carried out. A row claimed but not
 *    answered in time (the owner stopped or died mid-way) gives `ownerDidNotAnswer` saying the
 *    outcome is unknown (the device's command log and events tell; a read changed nothing): it
 *    is never run again.
 *
 * **When the owner dies or hands the shard over** before it claimed a row, the row stays
 * `pending` and whoever owns the shard next carries it out: every instance sweeps, every
 * `sweepMs` (1 s), the pending unexpired rows of the shards it holds, for the devices it runs
 * (`ready`: loaded after a take-over; for `adopt`, its shard is enough). A failover (≤ 8 s with
 * the default 6 s lease) fits in the default 15 s deadline, so an operation asked while its
 * device's owner dies is usually carried out by the next owner; later, it expires with
 * `ownerDidNotAnswer`. The sweep also catches a notification missed while the listening
 * connection was down (it reconnects on the next sweep). Rows are deleted a day after they were
 * asked; the command log and the events are the audit, not this table.
 *
 * Statuses: `pending` (asked), `running` (claimed by `claimed_by`), `done` (answered: `result`
 * is the owner's answer, ok or a refusal), `failed` (never carried out: `result` says why).
 *
 * The parts: the operations (routed-ops.ts), the queries (routed-actions.ts), the answer as
 * stored (routed-reply.ts), the requester's side (routing-requester.ts), the owner's side with its
 * sweep (routing-owner.ts), the listening connection (routing-listener.ts). This file finds where
 * an operation runs and puts them together.
 *
 * @example
 * const router = createCommandRouter({ url, instanceId: 'site-a-1', shardCount: 1024, logger,
 *   owns: keeper.owns, ready: (id, kind) => keeper.owns(id) && (kind === 'adopt' || fleet.has(id)),
 *   run: ({ deviceId, action, args, actor }) => fleet.act(deviceId, action, args, actor ?? '') });
 * router.answerWith((op) => api.answerHere(op)); // device, deviceInspect, sendEvent, …
 * await router.start();
 * await router.act('pump-7', 'identify', { seconds: 5 }, 'ann'); // carried out by pump-7's owner
 * await router.call({ kind: 'deviceInspect', deviceId: 'pump-7' }); // answered by pump-7's owner
 */
import pg from 'pg';
import type { Logger } from '../runtime/runtime.js';
import type { Notice } from './routed-actions.js';
import { actionChannelOf, deviceOfCommand, whereIs } from './routed-actions.js';
import type { RoutedAnswer, RoutedKind, RoutedOp } from './routed-ops.js';
import { isActionName, isRoutedKind, needsKnownDevice } from './routed-ops.js';
import type { RoutedRefusal, RoutedReply } from './routed-reply.js';
import { messageOf, refuse } from './routed-reply.js';
import { createRoutingListener } from './routing-listener.js';
import { createRoutingOwner } from './routing-owner.js';
import { createRoutingRequester } from './routing-requester.js';
import { shardOf } from './shard.js';

export { actionChannelOf } from './routed-actions.js';
export type { RoutedAnswer, RoutedKind, RoutedOp } from './routed-ops.js';
export type { RoutedError, RoutedReply } from './routed-reply.js';

export interface CommandRouterOptions {
  /** The fleet's PostgreSQL database (the store's and the leases'). */
  readonly url: string;
  readonly instanceId: string;
  /** The fleet's shard count. */
  readonly shardCount: number;
  /** This instance holds the lease of the device's shard (the lease keeper's view). */
  readonly owns: (deviceId: string) => boolean;
  /**
   * This instance can carry an operation of this kind out on the device now: it owns it and runs
   * it (an `adopt`: it owns its shard; the device is not in the fleet yet).
   */
  readonly ready: (deviceId: string, kind: RoutedKind) => boolean;
  /** Carries an action out here: the fleet's `act`, with the host's own checks. */
  readonly run: (op: RoutedOp<'act'>) => Promise<RoutedReply>;
  /** How long a requester waits for the owner's answer; default 15,000 ms. */
  readonly timeoutMs?: number;
  /** How often pending rows of this instance's shards are looked for; default 1000 ms. */
  readonly sweepMs?: number;
  readonly logger: Logger;
}

/** Answers, here, the operations other than `act` (the API's own handlers, not routed again). */
export type RoutedAnswerer = (op: RoutedOp<Exclude<RoutedKind, 'act'>>) => Promise<RoutedAnswer>;

export interface CommandRouter {
  /** Carries the action out here if this instance owns the device, else through its owner. */
  act(deviceId: string, action: string, args: unknown, actor: string): Promise<RoutedReply>;
  /**
   * Carries the operation out here if this instance owns the device's shard, else through the
   * owner, and answers what the owner answered. Refusals of its own: `notFound` (no such device
   * in the fleet; not for `adopt`), `noOwner`, `ownerDidNotAnswer`, `routingFailed`, `stopped`,
   * `badAnswer`, and `unavailable` (a kind nobody here answers: see {@link answerWith}).
   */
  call<K extends RoutedKind>(op: RoutedOp<K>): Promise<RoutedAnswer<K>>;
  /** Who answers here the kinds other than `act` (set by the API once it exists; the last one wins). */
  answerWith(answer: RoutedAnswerer): void;
  /** The device of a command in the fleet's command log; undefined: no such command. */
  deviceOfCommand(commandId: string): Promise<string | undefined>;
  /** Listens for operations asked of this instance and starts the sweep. */
  start(): Promise<void>;
  /** Stops listening; waits (a few seconds at most) for operations being carried out or waited for. */
  stop(): Promise<void>;
  /** Counts since start. */
  stats(): {
    /** Asked of another instance. */
    readonly asked: number;
    /** Carried out here for another instance. */
    readonly served: number;
    /** Asked, and not answered in time. */
    readonly unanswered: number;
  };
}

const DEFAULT_TIMEOUT_MS = 15_000;
/** How long stop() waits for operations in progress. */
const STOP_GRACE_MS = 5000;

/** A notification on this instance's channel, as sent (routed-actions.ts); undefined: not JSON. */
function parseNotice(payload: string | undefined): Notice | undefined {
  try {
    return JSON.parse(payload ?? '') as Notice;
  } catch {
    return undefined;
  }
}

/** The kind a request asks: none is an action; one this instance does not know is claimed and refused (badArgs). */
const requestedKind = (k: unknown): RoutedKind => (k === undefined ? 'act' : isRoutedKind(k) ? k : 'device');

/**
 * Where an operation on a device of a shard this instance does not lease runs (step 1): the id of
 * the instance holding the shard's lease (this one, possibly, after all), or the refusal —
 * `unknownAction`, `notFound` (not for `adopt`), `routingFailed`, `noOwner`.
 */
async function ownerOf(pool: pg.Pool, op: RoutedOp, shard: number): Promise<string | RoutedRefusal> {
  const { deviceId } = op;
  // No kind has such an action, and its row would read as another operation (`op:…`).
  if (op.kind === 'act' && !isActionName(op.action))
    return refuse('unknownAction', `no action '${op.action.slice(0, 80)}': an action's name is alphanumeric`);
  let ownerId: string | null;
  try {
    const where = await whereIs(pool, deviceId, shard);
    if (needsKnownDevice(op.kind) && !where?.known)
      return refuse('notFound', `no device '${deviceId.slice(0, 80)}' in the fleet`);
    ownerId = where?.owner ?? null;
  } catch (error) {
    return refuse('routingFailed', `cannot find who runs '${deviceId}': ${messageOf(error)}`);
  }
  if (ownerId === null)
    return refuse(
      'noOwner',
      `no instance runs '${deviceId}' now: the lease of its shard ${shard} expired and nobody has claimed it yet ` +
        '(an instance is starting or failing over); try again in a few seconds',
    );
  return ownerId;
}

/** Resolves when every one of `busy` has settled, or after `graceMs`, whichever comes first. */
async function settledWithin(busy: Iterable<Promise<unknown>>, graceMs: number): Promise<void> {
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.allSettled([...busy]),
    new Promise((resolve) => {
      grace = setTimeout(resolve, graceMs);
    }),
  ]);
  clearTimeout(grace);
}

export function createCommandRouter(options: CommandRouterOptions): CommandRouter {
  const { instanceId: me, shardCount, logger: log } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const pool = new pg.Pool({ connectionString: options.url, max: 4, application_name: 'fleetvisor-routing' });
  pool.on('error', (error) => log.warn('routing: a connection failed', { error: error.message }));
  const counts = { asked: 0, served: 0, unanswered: 0 };
  const busy = new Set<Promise<unknown>>();
  let stopped = false;
  let answerer: RoutedAnswerer | undefined;
  const isStopped = () => stopped;

  const track = <T>(p: Promise<T>): Promise<T> => {
    busy.add(p);
    void p.finally(() => busy.delete(p)).catch(() => {});
    return p;
  };

  /** Here, by kind: an action by the fleet, the rest by the API's handlers. */
  function runHere<K extends RoutedKind>(op: RoutedOp<K>): Promise<RoutedAnswer<K>> {
    const o = op as RoutedOp;
    if (o.kind === 'act') return options.run(o) as Promise<RoutedAnswer<K>>;
    if (!answerer)
      return Promise.resolve(
        refuse('unavailable', `'${o.kind}' cannot be answered on ${me}: its API is not running`),
      );
    return answerer(o) as Promise<RoutedAnswer<K>>;
  }

  const requester = createRoutingRequester({ pool, me, timeoutMs, counts, isStopped });
  const listener = createRoutingListener({
    url: options.url,
    channel: actionChannelOf(me),
    logger: log,
    onNotice,
    isStopped,
  });
  const owner = createRoutingOwner({
    pool,
    me,
    run: (op) => runHere(op),
    ready: (deviceId, kind) => options.ready(deviceId, kind),
    logger: log,
    counts,
    sweepMs: options.sweepMs ?? 1000,
    listener,
    track,
    isStopped,
  });

  function onNotice(payload: string | undefined): void {
    const n = parseNotice(payload);
    if (n === undefined) return;
    if (n.t === 'ans') requester.wake(n.id);
    else if (n.t === 'req' && typeof n.id === 'string' && typeof n.d === 'string') {
      if (options.ready(n.d, requestedKind(n.k))) owner.serve(n.id);
    }
  }

  async function call<K extends RoutedKind>(op: RoutedOp<K>): Promise<RoutedAnswer<K>> {
    if (stopped) return refuse('stopped', 'this instance is stopping');
    // Here at once when this instance runs the device; else the database says who does (this one
    // after all, for a device still loading; another, for one pinned elsewhere moments ago).
    if (options.ready(op.deviceId, op.kind)) return runHere(op);
    const shard = shardOf(op.deviceId, shardCount);
    const ownerId = await ownerOf(pool, op, shard);
    if (typeof ownerId !== 'string') return ownerId;
    if (ownerId === me) return runHere(op);
    return track(requester.ask(op, shard, ownerId));
  }

  return {
    act: (deviceId, action, args, actor) => call({ kind: 'act', deviceId, action, args, actor }),
    call,
    answerWith(answer) {
      answerer = answer;
    },
    deviceOfCommand: (commandId) => deviceOfCommand(pool, commandId),
    async start() {
      await listener.listen();
      owner.startSweeps();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      owner.stopSweeps();
      requester.wakeAll();
      await settledWithin(busy, STOP_GRACE_MS);
      await listener.close();
      await pool.end().catch(() => {});
    },
    stats: () => ({ ...counts }),
  };
}
