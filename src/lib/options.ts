/**
 * Options checked once, at the boundary, by a zod schema: the first problem throws a
 * `RangeError` whose message names the function and the field (`startMqttLink: reconnect.jitter
 * must be within 0…1, got 2`). Bad options are misuse (no retry fixes them), so they throw; the
 * schemas only check, they never transform: the caller keeps its own object and fills defaults.
 *
 * @example
 * const schema = z.object({ pollMs: positiveInt.optional(), onMessage: callback });
 * checkOptions('startSerialManager', schema, options); // throws RangeError('startSerialManager: pollMs must be a positive integer, got 0')
 */
import { z } from 'zod';

/** A whole number ≥ 1 (a count, a size, a duration in ms). */
export const positiveInt = z
  .number({ error: 'must be a positive integer' })
  .int({ error: 'must be a positive integer' })
  .min(1, { error: 'must be a positive integer' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'must be a positive integer' });

/** A whole number ≥ 0. */
export const nonNegativeInt = z
  .number({ error: 'must be a whole number >= 0' })
  .int({ error: 'must be a whole number >= 0' })
  .min(0, { error: 'must be a whole number >= 0' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'must be a whole number >= 0' });

/** A fraction in 0…1 (a jitter). */
export const fraction = z
  .number({ error: 'must be within 0…1' })
  .min(0, { error: 'must be within 0…1' })
  .max(1, { error: 'must be within 0…1' });

/** A non-empty string (a path, a client id). */
export const nonEmptyString = z.string({ error: 'must be a non-empty string' }).min(1, {
  error: 'must be a non-empty string',
});

/** A function (a callback or a hook); its signature is the TypeScript type's business. */
export const callback = z.custom<(...args: never[]) => unknown>((v) => typeof v === 'function', {
  error: 'must be a function',
});

const MAX_SHOWN = 80;

/** `value` for an error message: JSON-quoted where that helps, capped. */
function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'function') text = 'a function';
  else if (typeof value === 'number' || typeof value === 'boolean' || value == null) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/**
 * The first problem of `value` against `schema`, as `"<field> <what is wrong>, got <value>"`,
 * or undefined when it passes. Array items are named with brackets (`ports[2]`).
 */
export function optionsProblem(schema: z.ZodType, value: unknown): string | undefined {
  const r = schema.safeParse(value);
  if (r.success) return undefined;
  const issue = r.error.issues[0]!;
  const field = issue.path
    .map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`))
    .join('');
  const got = issue.code === 'unrecognized_keys' ? '' : `, got ${show(valueAt(value, issue.path))}`;
  return `${field === '' ? 'options' : field} ${issue.message}${got}`;
}

/**
 * Throws `RangeError("<where>: <field> <problem>, got <value>")` for the first problem of
 * `value` against `schema`; returns `value` unchanged when it passes.
 */
export function checkOptions<T>(where: string, schema: z.ZodType, value: T): T {
  const problem = optionsProblem(schema, value);
  if (problem !== undefined) throw new RangeError(`${where}: ${problem}`);
  return value;
}
