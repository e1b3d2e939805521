/**
 * The queries of routed operations (src/cluster/command-router.ts, the operations:
 * src/cluster/routed-ops.ts; schema: migration 3 of src/store/postgres-migrations.ts). Every time is the database's clock (`clock_timestamp()`).
 * A request and its notification are one statement, as are an answer and its notification: a
 * `pg_notify` is delivered on commit, so nobody is told of a row that is not there. A claim is one
 * `UPDATE … WHERE status = 'pending'` checked against the claimer's unexpired lease on the row's
 * shard, so two claims of one row never both succeed.
 *
 * @example
 * const where = await whereIs(pool, 'pump-7', 17); // { known: true, owner: 'site-a-2' }
 * await askOwner(pool, { id, shard: 17, op: { kind: 'act', deviceId: 'pump-7', action: 'identify', args: {},
 *   actor: 'ann' }, requestedBy: 'site-a-1', owner: 'site-a-2', timeoutMs: 15_000 });
 * const claimed = await claimRoutedAction(pool, id, 'site-a-2'); // undefined: not for it (any more)
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { RoutedKind, RoutedOp } from './routed-ops.js';
import { rowOfOp } from './routed-ops.js';

type Queryable = pg.Pool | pg.PoolClient;

/**
 * What goes to an instance's channel: a request for it (with the device and the operation's kind;
 * no `k`: an action, as before other kinds were routed), or an answer to it.
 */
export type Notice =
  | { readonly t: 'req'; readonly id: string; readonly d: string; readonly k?: RoutedKind }
  | { readonly t: 'ans'; readonly id: string };

/** The channel an instance listens on: a safe identifier whatever its id. */
export function actionChannelOf(instanceId: string): string {
  return `fleetvisor_actions_${createHash('sha256').update(instanceId).digest('hex').slice(0, 16)}`;
}

/**
 * Whether the device is in the fleet, and who runs it: the instance it is pinned to (an unexpired
 * pin: its serial port is there, src/cluster/pins.ts), else who holds an unexpired lease on its shard.
 */
export async function whereIs(
  db: Queryable,
  deviceId: string,
  shard: number,
): Promise<{ known: boolean; owner: string | null } | undefined> {
  const r = await db.query<{ known: boolean; owner: string | null }>(
    `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1) AS known,
       COALESCE(
         (SELECT owner FROM fleetvisor_live_pins WHERE device_id = $1),
         (SELECT owner FROM fleetvisor_leases
          WHERE shard = $2 AND owner IS NOT NULL AND expires_at > clock_timestamp())) AS owner`,
    [deviceId, shard],
  );
  return r.rows[0];
}

/** The device of a command in the fleet's command log; undefined: no such command. */
export async function deviceOfCommand(db: Queryable, commandId: string): Promise<string | undefined> {
  const r = await db.query<{ device_id: string }>('SELECT device_id FROM commands WHERE command_id = $1', [
    commandId,
  ]);
  return r.rows[0]?.device_id;
}

export interface RoutedRequest {
  readonly id: string;
  readonly shard: number;
  readonly op: RoutedOp;
  readonly requestedBy: string;
  readonly owner: string;
  /** From now, on the database's clock: not claimed after. */
  readonly timeoutMs: number;
}

/** Inserts the request, `pending`, and notifies the owner's channel. */
export async function askOwner(db: Queryable, q: RoutedRequest): Promise<void> {
  const row = rowOfOp(q.op);
  const notice: Notice = {
    t: 'req',
    id: q.id,
    d: q.op.deviceId,
    ...(q.op.kind !== 'act' ? { k: q.op.kind } : {}),
  };
  await db.query(
    `WITH asked AS (
       INSERT INTO fleetvisor_routed_actions
         (id, device_id, shard, action, args, actor, requested_by, target, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, clock_timestamp() + $9 * interval '1 millisecond')
       RETURNING id)
     SELECT pg_notify($10, $11) FROM asked`,
    [
      q.id,
      q.op.deviceId,
      q.shard,
      row.action,
      JSON.stringify(row.args),
      row.actor,
      q.requestedBy,
      q.owner,
      q.timeoutMs,
      actionChannelOf(q.owner),
      JSON.stringify(notice),
    ],
  );
}

export async function readRoutedAction(db: Queryable, id: string) {
  const r = await db.query<{ status: string; result: string | null; claimed_by: string | null }>(
    'SELECT status, result, claimed_by FROM fleetvisor_routed_actions WHERE id = $1',
    [id],
  );
  return r.rows[0];
}

/** Marks a request nobody claimed `failed`, with why; false when it was claimed or answered already. */
export async function giveUpRoutedAction(db: Queryable, id: string, resultText: string): Promise<boolean> {
  const r = await db.query(
    `UPDATE fleetvisor_routed_actions SET status = 'failed', result = $2, answered_at = clock_timestamp()
     WHERE id = $1 AND status = 'pending'`,
    [id, resultText],
  );
  return r.rowCount === 1;
}

export interface ClaimedAction {
  readonly device_id: string;
  readonly action: string;
  readonly args: string;
  readonly actor: string;
  readonly requested_by: string;
}

/** The request `r`'s device runs on instance `$2`: pinned to it, or its shard's and pinned to no other. */
const RUN_BY_ME = `(EXISTS (SELECT 1 FROM fleetvisor_live_pins p
              WHERE p.device_id = r.device_id AND p.owner = $2)
       OR (EXISTS (SELECT 1 FROM fleetvisor_leases l
                   WHERE l.shard = r.shard AND l.owner = $2 AND l.expires_at > clock_timestamp())
           AND NOT EXISTS (SELECT 1 FROM fleetvisor_live_pins p
                   WHERE p.device_id = r.device_id AND p.owner <> $2)))`;

/**
 * Claims a pending, unexpired request of a device `me` runs (pinned to it, or of a shard it holds
 * and pinned to no other instance); undefined: not (any more).
 */
export async function claimRoutedAction(
  db: Queryable,
  id: string,
  me: string,
): Promise<ClaimedAction | undefined> {
  const claimed = await db.query<ClaimedAction>(
    `UPDATE fleetvisor_routed_actions r
     SET status = 'running', claimed_by = $2, claimed_at = clock_timestamp()
     WHERE r.id = $1 AND r.status = 'pending' AND r.expires_at > clock_timestamp()
       AND ${RUN_BY_ME}
     RETURNING r.device_id, r.action, r.args, r.actor, r.requested_by`,
    [id, me],
  );
  return claimed.rows[0];
}

/** Writes the reply to a request `me` claimed, `done`, and notifies the requester's channel. */
export async function answerRoutedAction(
  db: Queryable,
  id: string,
  me: string,
  resultText: string,
  requestedBy: string,
): Promise<void> {
  await db.query(
    `WITH answered AS (
       UPDATE fleetvisor_routed_actions SET status = 'done', result = $3, answered_at = clock_timestamp()
       WHERE id = $1 AND status = 'running' AND claimed_by = $2
       RETURNING id)
     SELECT pg_notify($4, $5) FROM answered`,
    [id, me, resultText, actionChannelOf(requestedBy), JSON.stringify({ t: 'ans', id } satisfies Notice)],
  );
}

/** Pending, unexpired requests of the devices `me` runs (as {@link claimRoutedAction} says), oldest first. */
export async function pendingRoutedActions(
  db: Queryable,
  me: string,
  limit: number,
): Promise<{ id: string; device_id: string; action: string }[]> {
  const r = await db.query<{ id: string; device_id: string; action: string }>(
    `SELECT r.id, r.device_id, r.action FROM fleetvisor_routed_actions r
     WHERE r.status = 'pending' AND r.expires_at > clock_timestamp()
       AND ${RUN_BY_ME.replaceAll('$2', '$1')}
     ORDER BY r.requested_at
     LIMIT $2`,
    [me, limit],
  );
  return r.rows;
}

/** Rows asked more than a day ago: the command log is the audit, not this table. */
export async function deleteOldRoutedActions(db: Queryable): Promise<void> {
  await db.query(
    `DELETE FROM fleetvisor_routed_actions WHERE requested_at < clock_timestamp() - interval '1 day'`,
  );
}
