/**
 * Child specs as plain data, OTP's defaults, and validation once at the boundary.
 *
 * Defaults (OTP `supervisor`): restart `permanent`, type `worker`, shutdown 5000 ms for a
 * worker and `infinity` for a supervisor, significant `false`.
 *
 * @example
 * const spec = { id: 'link', start: () => startServer(rt, linkServer) };
 * const checked = validateChildSpec(spec, 'never'); // { ok: true, value: { ...spec, restart: 'permanent', ... } }
 */
import type { Result } from '../lib/result.js';
import type { Process, Shutdown } from './process.js';

export type RestartType = 'permanent' | 'transient' | 'temporary';
export type ChildType = 'worker' | 'supervisor';
export type Strategy = 'oneForOne' | 'oneForAll' | 'restForOne';
export type AutoShutdown = 'never' | 'anySignificant' | 'allSignificant';

/** What a start function gives back: a running process, or `null` for OTP's `ignore`. */
export type StartResult = Process | null;
/** Starts the child. Throwing (or rejecting) is a start failure with that error as the reason. */
export type StartFn = () => StartResult | Promise<StartResult>;

export interface ChildSpec {
  readonly id: string;
  readonly start: StartFn;
  readonly restart?: RestartType;
  readonly shutdown?: Shutdown;
  readonly type?: ChildType;
  readonly significant?: boolean;
}

export interface FullChildSpec {
  readonly id: string;
  readonly start: StartFn;
  readonly restart: RestartType;
  readonly shutdown: Shutdown;
  readonly type: ChildType;
  readonly significant: boolean;
}

export type SpecErrorCode =
  | 'missingId'
  | 'badId'
  | 'missingStart'
  | 'badRestart'
  | 'badShutdown'
  | 'badType'
  | 'badSignificant'
  | 'significantPermanent'
  | 'significantWithoutAutoShutdown'
  | 'duplicateId'
  | 'badStrategy'
  | 'badMaxRestarts'
  | 'badPeriod'
  | 'badAutoShutdown'
  | 'badMaxChildren';

export interface SpecError {
  readonly code: SpecErrorCode;
  /** The field at fault, e.g. `children[2].shutdown` or `maxRestarts`. */
  readonly field: string;
  readonly message: string;
}

export type Checked<T> = Result<T, SpecError>;

const RESTARTS: readonly string[] = ['permanent', 'transient', 'temporary'];
const TYPES: readonly string[] = ['worker', 'supervisor'];
const STRATEGIES: readonly string[] = ['oneForOne', 'oneForAll', 'restForOne'];
const AUTO_SHUTDOWNS: readonly string[] = ['never', 'anySignificant', 'allSignificant'];

const fail = (code: SpecErrorCode, field: string, message: string): { ok: false; error: SpecError } => ({
  ok: false,
  error: { code, field, message },
});

export function isValidShutdown(value: unknown): value is Shutdown {
  return (
    value === 'brutalKill' ||
    value === 'infinity' ||
    (typeof value === 'number' && Number.isInteger(value) && value >= 0)
  );
}

/**
 * Fills OTP's defaults and rejects bad values with a code naming the field. `autoShutdown` is
 * the supervisor's, needed to judge `significant` (OTP rejects significant children under
 * `never`, and significant permanent children anywhere).
 */
export function validateChildSpec(
  spec: unknown,
  autoShutdown: AutoShutdown,
  field = 'child',
): Checked<FullChildSpec> {
  if (typeof spec !== 'object' || spec === null)
    return fail('missingId', field, `${field} must be an object`);
  const s = spec as Record<string, unknown>;
  if (s.id === undefined) return fail('missingId', `${field}.id`, `${field}.id is required`);
  if (typeof s.id !== 'string' || s.id.length === 0 || s.id.length > 256)
    return fail('badId', `${field}.id`, `${field}.id must be a non-empty string of at most 256 characters`);
  const at = `${field} '${s.id}'`;
  if (s.start === undefined) return fail('missingStart', `${field}.start`, `${at}: start is required`);
  if (typeof s.start !== 'function')
    return fail('missingStart', `${field}.start`, `${at}: start must be a function`);
  const restart = s.restart ?? 'permanent';
  if (typeof restart !== 'string' || !RESTARTS.includes(restart))
    return fail('badRestart', `${field}.restart`, `${at}: restart must be permanent | transient | temporary`);
  const type = s.type ?? 'worker';
  if (typeof type !== 'string' || !TYPES.includes(type))
    return fail('badType', `${field}.type`, `${at}: type must be worker | supervisor`);
  const shutdown = s.shutdown ?? (type === 'supervisor' ? 'infinity' : 5000);
  if (!isValidShutdown(shutdown))
    return fail(
      'badShutdown',
      `${field}.shutdown`,
      `${at}: shutdown must be 'brutalKill', 'infinity' or a whole number of ms >= 0 (got ${String(shutdown)})`,
    );
  const significant = s.significant ?? false;
  if (typeof significant !== 'boolean')
    return fail('badSignificant', `${field}.significant`, `${at}: significant must be a boolean`);
  if (significant && restart === 'permanent')
    return fail(
      'significantPermanent',
      `${field}.significant`,
      `${at}: a permanent child cannot be significant`,
    );
  if (significant && autoShutdown === 'never')
    return fail(
      'significantWithoutAutoShutdown',
      `${field}.significant`,
      `${at}: significant children need autoShutdown anySignificant or allSignificant`,
    );
  return {
    ok: true,
    value: {
      id: s.id,
      start: s.start as StartFn,
      restart: restart as RestartType,
      shutdown,
      type: type as ChildType,
      significant,
    },
  };
}

export interface SupervisorFlags {
  readonly strategy: Strategy;
  readonly maxRestarts: number;
  readonly periodMs: number;
  readonly autoShutdown: AutoShutdown;
}

/** OTP's supervisor defaults: intensity 1 within 5 s, oneForOne, autoShutdown never. */
export const SUPERVISOR_DEFAULTS: SupervisorFlags = Object.freeze({
  strategy: 'oneForOne',
  maxRestarts: 1,
  periodMs: 5000,
  autoShutdown: 'never',
});

/** Validates supervisor flags; unknown flags are ignored (OTP sup_flags). */
export function validateSupervisorFlags(
  flags: Partial<Record<keyof SupervisorFlags, unknown>>,
): Checked<SupervisorFlags> {
  const strategy = flags.strategy ?? SUPERVISOR_DEFAULTS.strategy;
  if (typeof strategy !== 'string' || !STRATEGIES.includes(strategy))
    return fail('badStrategy', 'strategy', 'strategy must be oneForOne | oneForAll | restForOne');
  const maxRestarts = flags.maxRestarts ?? SUPERVISOR_DEFAULTS.maxRestarts;
  if (typeof maxRestarts !== 'number' || !Number.isInteger(maxRestarts) || maxRestarts < 0)
    return fail(
      'badMaxRestarts',
      'maxRestarts',
      'maxRestarts must be a whole number >= 0 (infinity is not allowed)',
    );
  const periodMs = flags.periodMs ?? SUPERVISOR_DEFAULTS.periodMs;
  if (typeof periodMs !== 'number' || !Number.isInteger(periodMs) || periodMs <= 0)
    return fail(
      'badPeriod',
      'periodMs',
      'periodMs must be a whole number of ms > 0 (0 and infinity are not allowed)',
    );
  const autoShutdown = flags.autoShutdown ?? SUPERVISOR_DEFAULTS.autoShutdown;
  if (typeof autoShutdown !== 'string' || !AUTO_SHUTDOWNS.includes(autoShutdown))
    return fail(
      'badAutoShutdown',
      'autoShutdown',
      'autoShutdown must be never | anySignificant | allSignificant',
    );
  return {
    ok: true,
    value: {
      strategy: strategy as Strategy,
      maxRestarts,
      periodMs,
      autoShutdown: autoShutdown as AutoShutdown,
    },
  };
}

/** Validates every spec and rejects duplicate ids. */
export function validateChildSpecs(
  specs: readonly unknown[],
  autoShutdown: AutoShutdown,
): Checked<FullChildSpec[]> {
  const out: FullChildSpec[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < specs.length; i++) {
    const checked = validateChildSpec(specs[i], autoShutdown, `children[${i}]`);
    if (!checked.ok) return checked;
    if (seen.has(checked.value.id))
      return fail('duplicateId', `children[${i}].id`, `duplicate child id '${checked.value.id}'`);
    seen.add(checked.value.id);
    out.push(checked.value);
  }
  return { ok: true, value: out };
}
