/**
 * The operations a cluster carries out on a device's owner (src/cluster/command-router.ts): one
 * closed union, each kind with its own fields, checked by zod when the owner reads them back from
 * its row of `fleetvisor_routed_actions`.
 *
 * - `act`: an operator's action (the fleet's `act`; the command log and events written by the
 *   owner under its lease).
 * - `cancelCommand`, `restartDevice`, `sendEvent` (audited by the owner), `adopt` (a discovered
 *   device joins the fleet on the owner of its shard): writes.
 * - `device`, `deviceInspect`: reads of what only the instance running the device knows (its
 *   machine, live transitions, the events it processed).
 * - `firmwareUpdate`, `firmwareCancel`: the device's update job, run by its owner (the image
 *   shared through the database first, src/cluster/shared-images.ts); `firmwareJobs`: a read of
 *   the device's job there.
 *
 * A row keeps the operation in the table's `action` and `args` columns: an `act` as the action's
 * name and its arguments (as before the other kinds existed), any other kind as `op:<kind>` and
 * its fields. An action name is alphanumeric (src/devices/define-device.ts), so the two never
 * meet, and an instance that knows only `act` refuses an `op:` row as an unknown action.
 * An actor the caller did not name is kept as `''`: the owner applies the API's own default.
 *
 * @example
 * const op: RoutedOp = { kind: 'sendEvent', deviceId: 'pump-7', actor: 'ann', event: 'HELLO', payload: {} };
 * const row = rowOfOp(op); // { action: 'op:sendEvent', args: { event: 'HELLO', payload: {} }, actor: 'ann' }
 * opOfRow({ device_id: 'pump-7', ...row, args: JSON.stringify(row.args) }); // { ok: true, value: op }
 */
import { z } from 'zod';
import type { ActionReply } from '../devices/fleet.js';
import type { JsonValue } from '../lib/json.js';
import type { Result } from '../lib/result.js';
import type { RoutedError } from './routed-reply.js';

const commandId = z.string().min(1).max(64);

/** What an action may be called (src/devices/define-device.ts): never `op:…`. */
const ACTION_NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

export const isActionName = (name: string): boolean => ACTION_NAME.test(name);

/** Each kind's own fields (besides the device and the actor). */
export const ROUTED_OPS = {
  act: z.object({ action: z.string().regex(ACTION_NAME), args: z.unknown() }).strict(),
  cancelCommand: z.object({ commandId }).strict(),
  restartDevice: z.object({}).strict(),
  sendEvent: z.object({ event: z.string().min(1).max(64), payload: z.json().optional() }).strict(),
  adopt: z.object({}).strict(),
  device: z.object({}).strict(),
  deviceInspect: z.object({}).strict(),
  firmwareUpdate: z
    .object({
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      trialMs: z.number().int().min(1000).max(86_400_000).optional(),
      trialChecks: z.array(z.string().max(1000)).max(100).optional(),
    })
    .strict(),
  firmwareCancel: z.object({}).strict(),
  firmwareJobs: z.object({}).strict(),
} as const;

export type RoutedKind = keyof typeof ROUTED_OPS;

export const ROUTED_KINDS = Object.keys(ROUTED_OPS) as readonly RoutedKind[];

export const isRoutedKind = (k: unknown): k is RoutedKind =>
  typeof k === 'string' && Object.hasOwn(ROUTED_OPS, k);

/** A schema's fields without the index signature a strict empty object has. */
type FieldsOf<K extends RoutedKind> = {
  readonly [P in keyof z.output<(typeof ROUTED_OPS)[K]> as string extends P ? never : P]: z.output<
    (typeof ROUTED_OPS)[K]
  >[P];
};

/** One operation: its kind, the device it is about, who asked (absent: the API's default), its fields. */
export type RoutedOp<K extends RoutedKind = RoutedKind> = K extends RoutedKind
  ? { readonly kind: K; readonly deviceId: string; readonly actor?: string } & FieldsOf<K>
  : never;

/**
 * What an operation answers, wherever it ran: an `act` the fleet's reply, any other kind the API's
 * own envelope of the method of the same name (its value as JSON, its refusals in the API's codes).
 */
export type RoutedAnswer<K extends RoutedKind = RoutedKind> = K extends 'act'
  ? Result<ActionReply, RoutedError>
  : Result<JsonValue, RoutedError>;

/** Reads that change nothing: not answered in time, they can simply be asked again. */
export const isRead = (kind: RoutedKind): boolean =>
  kind === 'device' || kind === 'deviceInspect' || kind === 'firmwareJobs';

/** Needs the device in the fleet's table first (all but `adopt`: adopting puts it there). */
export const needsKnownDevice = (kind: RoutedKind): boolean => kind !== 'adopt';

const PREFIX = 'op:';

/** The `action` column's text of a kind (an act's is its action name). */
export const opColumn = (kind: Exclude<RoutedKind, 'act'>): string => `${PREFIX}${kind}`;

/** The kind a row's `action` column names; undefined: none this instance knows. */
export function kindOfColumn(action: string): RoutedKind | undefined {
  if (!action.startsWith(PREFIX)) return 'act';
  const k = action.slice(PREFIX.length);
  return isRoutedKind(k) && k !== 'act' ? k : undefined;
}

/** How the operation's row names it: the columns `action`, `args` (before JSON) and `actor`. */
export function rowOfOp(op: RoutedOp): { action: string; args: unknown; actor: string } {
  const actor = op.actor ?? '';
  if (op.kind === 'act') return { action: op.action, args: op.args ?? {}, actor };
  const { kind, deviceId: _d, actor: _a, ...fields } = op;
  return { action: opColumn(kind), args: fields, actor };
}

/** What the owner reads back from a row, checked: a damaged row is a clear `badArgs`. */
export function opOfRow(row: {
  readonly device_id: string;
  readonly action: string;
  readonly args: string;
  readonly actor: string;
}): Result<RoutedOp, RoutedError> {
  const bad = (message: string): Result<RoutedOp, RoutedError> => ({
    ok: false,
    error: { code: 'badArgs', message },
  });
  const kind = kindOfColumn(row.action);
  if (kind === undefined) return bad(`'${row.action.slice(0, 80)}' is no operation this instance knows`);
  let args: unknown;
  try {
    args = JSON.parse(row.args);
  } catch {
    return bad('the arguments stored with the operation are not JSON');
  }
  const fields = ROUTED_OPS[kind].safeParse(kind === 'act' ? { action: row.action, args } : args);
  if (!fields.success)
    return bad(
      `the arguments stored with '${kind}' do not check: ${fields.error.issues
        .map((i) => `${i.path.join('.') || '(args)'}: ${i.message}`)
        .join('; ')}`,
    );
  return {
    ok: true,
    value: {
      kind,
      deviceId: row.device_id,
      ...(row.actor !== '' ? { actor: row.actor } : {}),
      ...fields.data,
    } as RoutedOp,
  };
}

/** The operation's name in messages: an act's action, else the kind. */
export const labelOf = (op: RoutedOp): string => (op.kind === 'act' ? op.action : op.kind);
