/**
 * Actions asked on any instance of a cluster, carried out by the instance that owns the device
 * (issue 17 §3, docs/scale-out.md). An operator's `act` on a device of a shard this instance
 * leases runs here as on a single instance; on any other device it goes through PostgreSQL:
 *
 * 1. **Where.** One query reads whether the device is in the fleet (`devices`) and who holds an
 *    unexpired lease on its shard (`fleetvisor_leases`, the database's clock). Unknown device:
 *    `notFound`. No unexpired lease at all (an instance is starting or failing over): `noOwner`,
 *    at once. The owner is this instance after all: it runs here.
 * 2. **Ask.** A row of `fleetvisor_routed_actions` (migration 3), `pending`, with the action, its
 *    arguments, the original actor, the requester, the owner asked and a deadline (`timeoutMs`,
 *    15 s by default, on the database's clock), inserted in the same statement that
 *    `NOTIFY`s the owner's channel (`fleetvisor_actions_<hash of its id>`): delivered on commit.
 * 3. **Carry out.** Each instance `LISTEN`s on its channel with a dedicated connection (not the
 *    pool). It claims a row with one `UPDATE … SET status = 'running' WHERE status = 'pending'
 *    AND expires_at > now AND <its unexpired lease on the row's shard> RETURNING …`: two claims
 *    of one row never both succeed, so an action never runs twice. It then runs the fleet's `act`
 *    with the original actor — the command log and the events are written by the owner, fenced
 *    by its lease as every write of its devices — and writes the reply (the same
 *    `Result<ActionReply>` the local call gives, refusals included) with `status = 'done'`, and
 *    `NOTIFY`s the requester's channel.
 * 4. **Answer.** The requester waits for that notification, reading the row at most every
 *    second as well (a lost connection loses notifications). At the deadline it marks the row
 *    `failed` in one `UPDATE … WHERE status = 'pending'`: from then on nobody can claim it, and
 *    the caller gets `ownerDidNotAnswer` saying it was **not** carried out. A row claimed but not
 *    answered in time (the owner stopped or died mid-way) gives `ownerDidNotAnswer` saying the
 *    outcome is unknown (the device's command log tells): it is never run again.
 *
 * **When the owner dies or hands the shard over** before it claimed a row, the row stays
 * `pending` and whoever owns the shard next carries it out: every instance sweeps, every
 * `sweepMs` (1 s), the pending unexpired rows of the shards it holds, for the devices it runs
 * (`ready`: loaded after a take-over). A failover (≤ 8 s with the default 6 s lease) fits in the
 * default 15 s deadline, so an action asked while its device's owner dies is usually carried
 * out by the next owner; later, it expires with `ownerDidNotAnswer`. The sweep also catches a
 * notification missed while the listening connection was down (it reconnects on the next sweep).
 * Rows are deleted a day after they were asked; the command log is the audit, not this table.
 *
 * Statuses: `pending` (asked), `running` (claimed by `claimed_by`), `done` (answered: `result`
 * is the owner's reply, ok or a refusal), `failed` (never carried out: `result` says why).
 *
 * @example
 * const router = createCommandRouter({ url, instanceId: 'site-a-1', shardCount: 1024, logger,
 *   owns: keeper.owns, ready: (id) => keeper.owns(id) && fleet.has(id),
 *   run: (id, action, args, actor) => fleet.act(id, action, args, actor) });
 * await router.start();
 * await router.act('pump-7', 'identify', { seconds: 5 }, 'ann'); // carried out by pump-7's owner
 */
import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { ActionReply } from '../devices/fleet.js';
import type { Result } from '../lib/result.js';
import type { Logger } from '../runtime/runtime.js';
import { shardOf } from './shard.js';

/** A refusal, as the fleet (or the host) gives it: a code, a sentence, maybe when to retry. */
export interface RoutedError {
  readonly code: string;
  readonly message: string;
  readonly retryAt?: number;
}

/** What an action answers, wherever it ran. */
export type RoutedReply = Result<ActionReply, RoutedError>;

export interface CommandRouterOptions {
  /** The fleet's PostgreSQL database (the store's and the leases'). */
  readonly url: string;
  readonly instanceId: string;
  /** The fleet's shard count. */
  readonly shardCount: number;
  /** This instance holds the lease of the device's shard (the lease keeper's view). */
  readonly owns: (deviceId: string) => boolean;
  /** This instance can carry an action out on the device now: it owns it and runs it. */
  readonly ready: (deviceId: string) => boolean;
  /** Carries the action out here: the fleet's `act`, with the host's own checks. */
  readonly run: (deviceId: string, action: string, args: unknown, actor: string) => Promise<RoutedReply>;
  /** How long a requester waits for the owner's answer; default 15,000 ms. */
  readonly timeoutMs?: number;
  /** How often pending rows of this instance's shards are looked for; default 1000 ms. */
  readonly sweepMs?: number;
  readonly logger: Logger;
}

export interface CommandRouter {
  /** Carries the action out here if this instance owns the device, else through its owner. */
  act(deviceId: string, action: string, args: unknown, actor: string): Promise<RoutedReply>;
  /** Listens for actions asked of this instance and starts the sweep. */
  start(): Promise<void>;
  /** Stops listening; waits (a few seconds at most) for actions being carried out or waited for. */
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

/** The channel an instance listens on: a safe identifier whatever its id. */
export function actionChannelOf(instanceId: string): string {
  return `fleetvisor_actions_${createHash('sha256').update(instanceId).digest('hex').slice(0, 16)}`;
}

const DEFAULT_TIMEOUT_MS = 15_000;
const POLL_MS = 1000;
/** Rows carried out at once for other instances; more wait for the next sweep. */
const MAX_SERVING = 32;
/** How long stop() waits for actions in progress. */
const STOP_GRACE_MS = 5000;
/** Old rows are deleted every this many sweeps. */
const CLEANUP_EVERY = 60;

type Notice =
  | { readonly t: 'req'; readonly id: string; readonly d: string }
  | { readonly t: 'ans'; readonly id: string };

const refuse = (code: string, message: string): RoutedReply => ({ ok: false, error: { code, message } });

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The stored reply, checked: a damaged row is a clear error, never a crash. */
function parseReply(text: string | null): RoutedReply {
  let v: unknown;
  try {
    v = text === null ? undefined : JSON.parse(text);
  } catch {
    v = undefined;
  }
  const o = v as
    | { ok?: unknown; value?: Record<string, unknown>; error?: Record<string, unknown> }
    | undefined;
  if (o?.ok === true && o.value && typeof o.value.commandId === 'string' && typeof o.value.state === 'string')
    return {
      ok: true,
      value: {
        commandId: o.value.commandId,
        state: o.value.state,
        ...(typeof o.value.commandStatus === 'string' ? { commandStatus: o.value.commandStatus } : {}),
      },
    };
  if (o?.ok === false && o.error && typeof o.error.code === 'string' && typeof o.error.message === 'string')
    return {
      ok: false,
      error: {
        code: o.error.code,
        message: o.error.message,
        ...(typeof o.error.retryAt === 'number' ? { retryAt: o.error.retryAt } : {}),
      },
    };
  return refuse('badAnswer', `the owner's answer could not be read: ${String(text).slice(0, 200)}`);
}

/** Only what the contract carries: a Failure may hold more than JSON can. */
function replyText(r: RoutedReply): string {
  return JSON.stringify(
    r.ok
      ? { ok: true, value: r.value }
      : {
          ok: false,
          error: {
            code: r.error.code,
            message: r.error.message,
            ...(r.error.retryAt !== undefined ? { retryAt: r.error.retryAt } : {}),
          },
        },
  );
}

export function createCommandRouter(options: CommandRouterOptions): CommandRouter {
  const { instanceId: me, shardCount, logger: log } = options;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const sweepMs = options.sweepMs ?? 1000;
  const myChannel = actionChannelOf(me);
  const pool = new pg.Pool({ connectionString: options.url, max: 4, application_name: 'fleetvisor-routing' });
  pool.on('error', (error) => log.warn('routing: a connection failed', { error: error.message }));
  const counts = { asked: 0, served: 0, unanswered: 0 };
  /** Requests of this instance waiting for an answer: id → wake. */
  const waiting = new Map<string, () => void>();
  const serving = new Set<string>();
  const busy = new Set<Promise<unknown>>();
  let listener: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;
  let sweeps = 0;
  let stopped = false;

  const track = <T>(p: Promise<T>): Promise<T> => {
    busy.add(p);
    void p.finally(() => busy.delete(p)).catch(() => {});
    return p;
  };

  // ---------------------------------------------------------------------------------------------
  // The requester's side

  async function act(deviceId: string, action: string, args: unknown, actor: string): Promise<RoutedReply> {
    if (stopped) return refuse('stopped', 'this instance is stopping');
    if (options.owns(deviceId)) return options.run(deviceId, action, args, actor);
    const shard = shardOf(deviceId, shardCount);
    let owner: string | null;
    try {
      const r = await pool.query<{ known: boolean; owner: string | null }>(
        `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1) AS known,
           (SELECT owner FROM fleetvisor_leases
            WHERE shard = $2 AND owner IS NOT NULL AND expires_at > clock_timestamp()) AS owner`,
        [deviceId, shard],
      );
      if (!r.rows[0]?.known) return refuse('notFound', `no device '${deviceId.slice(0, 80)}' in the fleet`);
      owner = r.rows[0].owner;
    } catch (error) {
      return refuse('routingFailed', `cannot find who runs '${deviceId}': ${messageOf(error)}`);
    }
    if (owner === null)
      return refuse(
        'noOwner',
        `no instance runs '${deviceId}' now: the lease of its shard ${shard} expired and nobody has claimed it yet ` +
          '(an instance is starting or failing over); try again in a few seconds',
      );
    if (owner === me) return options.run(deviceId, action, args, actor);
    return track(ask(deviceId, shard, owner, action, args, actor));
  }

  async function ask(
    deviceId: string,
    shard: number,
    owner: string,
    action: string,
    args: unknown,
    actor: string,
  ): Promise<RoutedReply> {
    const id = randomUUID();
    let wake = () => {};
    waiting.set(id, () => wake());
    const nap = (ms: number) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    const seconds = `${Math.round(timeoutMs / 100) / 10} s`;
    try {
      try {
        await pool.query(
          `WITH asked AS (
             INSERT INTO fleetvisor_routed_actions
               (id, device_id, shard, action, args, actor, requested_by, target, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp() + $9 * interval '1 millisecond')
             RETURNING id)
           SELECT pg_notify($10, $11) FROM asked`,
          [
            id,
            deviceId,
            shard,
            action,
            JSON.stringify(args ?? {}),
            actor,
            me,
            owner,
            timeoutMs,
            actionChannelOf(owner),
            JSON.stringify({ t: 'req', id, d: deviceId } satisfies Notice),
          ],
        );
      } catch (error) {
        return refuse(
          'routingFailed',
          `cannot ask ${owner} to carry out '${action}' on '${deviceId}': ${messageOf(error)}`,
        );
      }
      counts.asked++;
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0 || stopped) break;
        await nap(Math.min(POLL_MS, left));
        const row = await readRow(id).catch(() => undefined);
        if (row && (row.status === 'done' || row.status === 'failed')) return parseReply(row.result);
      }
      // Give up: a row nobody claimed can be claimed no more; one claimed may have run.
      counts.unanswered++;
      const why = stopped ? 'this instance is stopping' : `no answer within ${seconds}`;
      try {
        const r = await pool.query(
          `UPDATE fleetvisor_routed_actions SET status = 'failed', result = $2, answered_at = clock_timestamp()
           WHERE id = $1 AND status = 'pending'`,
          [id, replyText(refuse('ownerDidNotAnswer', why))],
        );
        if (r.rowCount === 1)
          return refuse(
            'ownerDidNotAnswer',
            `${owner}, which runs '${deviceId}', did not take '${action}' (${why}): it may be stopped, overloaded or ` +
              'still loading the device. It was not carried out and will not be.',
          );
        const row = await readRow(id);
        if (row && (row.status === 'done' || row.status === 'failed')) return parseReply(row.result);
        return refuse(
          'ownerDidNotAnswer',
          `${row?.claimed_by ?? owner} took '${action}' on '${deviceId}' but did not answer (${why}): it stopped or ` +
            `failed mid-way. Whether it was carried out is unknown: the device's command log tells. It will not run again.`,
        );
      } catch (error) {
        return refuse(
          'ownerDidNotAnswer',
          `${owner} did not answer '${action}' on '${deviceId}' (${why}), and the database did not answer either ` +
            `(${messageOf(error)}): whether it was carried out is unknown; the device's command log tells.`,
        );
      }
    } finally {
      waiting.delete(id);
    }
  }

  async function readRow(id: string) {
    const r = await pool.query<{ status: string; result: string | null; claimed_by: string | null }>(
      'SELECT status, result, claimed_by FROM fleetvisor_routed_actions WHERE id = $1',
      [id],
    );
    return r.rows[0];
  }

  // ---------------------------------------------------------------------------------------------
  // The owner's side

  function serve(id: string): void {
    if (stopped || serving.has(id) || serving.size >= MAX_SERVING) return; // the sweep comes back
    serving.add(id);
    void track(
      carryOut(id)
        .catch((error: unknown) =>
          log.warn('routing: an action asked by another instance failed', { id, error: messageOf(error) }),
        )
        .finally(() => serving.delete(id)),
    );
  }

  async function carryOut(id: string): Promise<void> {
    const claimed = await pool.query<{
      device_id: string;
      action: string;
      args: string;
      actor: string;
      requested_by: string;
    }>(
      `UPDATE fleetvisor_routed_actions r
       SET status = 'running', claimed_by = $2, claimed_at = clock_timestamp()
       WHERE r.id = $1 AND r.status = 'pending' AND r.expires_at > clock_timestamp()
         AND EXISTS (SELECT 1 FROM fleetvisor_leases l
                     WHERE l.shard = r.shard AND l.owner = $2 AND l.expires_at > clock_timestamp())
       RETURNING r.device_id, r.action, r.args, r.actor, r.requested_by`,
      [id, me],
    );
    const row = claimed.rows[0];
    if (!row) return; // claimed elsewhere, answered, expired, or not our shard (any more)
    let reply: RoutedReply;
    let args: unknown;
    try {
      args = JSON.parse(row.args);
    } catch {
      args = undefined;
    }
    if (args === undefined) reply = refuse('badArgs', 'the arguments stored with the action are not JSON');
    else
      try {
        reply = await options.run(row.device_id, row.action, args, row.actor);
      } catch (error) {
        reply = refuse(
          'internal',
          `'${row.action}' on '${row.device_id}' failed on ${me}: ${messageOf(error)}`,
        );
      }
    counts.served++;
    await pool.query(
      `WITH answered AS (
         UPDATE fleetvisor_routed_actions SET status = 'done', result = $3, answered_at = clock_timestamp()
         WHERE id = $1 AND status = 'running' AND claimed_by = $2
         RETURNING id)
       SELECT pg_notify($4, $5) FROM answered`,
      [
        id,
        me,
        replyText(reply),
        actionChannelOf(row.requested_by),
        JSON.stringify({ t: 'ans', id } satisfies Notice),
      ],
    );
  }

  /** Pending rows of the shards this instance holds, for the devices it runs. */
  async function sweep(): Promise<void> {
    if (sweeping || stopped) return;
    sweeping = true;
    try {
      if (!listener) await listen().catch(() => {}); // logged by listen()
      const r = await pool.query<{ id: string; device_id: string }>(
        `SELECT r.id, r.device_id FROM fleetvisor_routed_actions r
         WHERE r.status = 'pending' AND r.expires_at > clock_timestamp()
           AND r.shard IN (SELECT shard FROM fleetvisor_leases
                           WHERE owner = $1 AND expires_at > clock_timestamp())
         ORDER BY r.requested_at
         LIMIT $2`,
        [me, MAX_SERVING],
      );
      for (const row of r.rows) if (options.ready(row.device_id)) serve(row.id);
      if (++sweeps % CLEANUP_EVERY === 0)
        await pool.query(
          `DELETE FROM fleetvisor_routed_actions WHERE requested_at < clock_timestamp() - interval '1 day'`,
        );
    } catch (error) {
      log.warn('routing: the sweep of routed actions failed', { error: messageOf(error) });
    } finally {
      sweeping = false;
    }
  }

  function onNotice(payload: string | undefined): void {
    let n: Notice;
    try {
      n = JSON.parse(payload ?? '') as Notice;
    } catch {
      return;
    }
    if (n.t === 'ans') waiting.get(n.id)?.();
    else if (n.t === 'req' && typeof n.id === 'string' && typeof n.d === 'string' && options.ready(n.d))
      serve(n.id);
  }

  function listen(): Promise<void> {
    connecting ??= (async () => {
      const client = new pg.Client({
        connectionString: options.url,
        application_name: 'fleetvisor-routing-listen',
      });
      const drop = () => {
        if (listener === client) listener = undefined;
        void client.end().catch(() => {});
      };
      client.on('notification', (m) => onNotice(m.payload));
      client.on('error', (error) => {
        if (!stopped)
          log.warn('routing: the listening connection failed; it reconnects', { error: error.message });
        drop();
      });
      client.on('end', drop);
      try {
        await client.connect();
        await client.query(`LISTEN ${myChannel}`);
      } catch (error) {
        void client.end().catch(() => {});
        if (!stopped) log.warn('routing: cannot listen for routed actions', { error: messageOf(error) });
        throw error;
      }
      if (stopped) {
        await client.end().catch(() => {});
        return;
      }
      listener = client;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  }

  function loop(): void {
    timer = setTimeout(() => {
      void sweep().finally(() => {
        if (!stopped) loop();
      });
    }, sweepMs);
    timer.unref?.();
  }

  return {
    act,
    async start() {
      await listen();
      loop();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const wake of waiting.values()) wake();
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...busy]),
        new Promise((resolve) => {
          grace = setTimeout(resolve, STOP_GRACE_MS);
        }),
      ]);
      clearTimeout(grace);
      await connecting?.catch(() => {});
      await listener?.end().catch(() => {});
      listener = undefined;
      await pool.end().catch(() => {});
    },
    stats: () => ({ ...counts }),
  };
}
