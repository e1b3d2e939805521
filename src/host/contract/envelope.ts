/**
 * The contract's envelope: every call answers a {@link Envelope}, a value or an {@link ApiError}
 * with a stable code (`badRequest`, `notFound`, …); lists come in {@link Page}s.
 */

import type { JsonValue } from '../../lib/json.js';
import type { Result } from '../../lib/result.js';

export type ApiErrorCode =
  | 'badRequest'
  | 'unauthorized'
  | 'notFound'
  | 'notAllowed'
  | 'conflict'
  | 'unavailable'
  | 'internal'
  | (string & {});

export interface ApiError {
  readonly code: ApiErrorCode;
  readonly message: string;
  /** Wall-clock ms when trying again can work: with `circuitOpen` (the next probe) and `rateLimited`. */
  readonly retryAt?: number;
}

export type Envelope<T> = Result<T, ApiError>;

export type Json = JsonValue;

export interface Page<T> {
  readonly items: readonly T[];
  readonly total?: number;
  /** Pass as `cursor` for the next page; null at the end. */
  readonly next: number | null;
}
