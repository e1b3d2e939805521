/**
 * The one ok-or-error envelope of the codebase: expected outcomes are values, never exceptions.
 * Every layer names its own closed error vocabulary and wraps it here (`Result<T, Failure<Code>>`).
 *
 * @example
 * type Code = 'notFound' | 'badArgs';
 * function find(id: string): Result<Device, Failure<Code>> {
 *   const d = devices.get(id);
 *   return d ? ok(d) : err('notFound', `no device '${id}'`);
 * }
 */
export type Result<T, E> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: E };

/** An expected failure: a code from a documented closed set and a sentence for people. */
export interface Failure<C extends string = string> {
  readonly code: C;
  readonly message: string;
}

export const ok = <T>(value: T): { readonly ok: true; readonly value: T } => ({ ok: true, value });

export const err = <C extends string>(
  code: C,
  message: string,
): { readonly ok: false; readonly error: Failure<C> } => ({ ok: false, error: { code, message } });
