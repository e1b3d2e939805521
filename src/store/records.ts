/**
 * Checks on records going into a store and defensive parsing of records coming out. Engine-neutral,
 * so every engine refuses misuse and reports bad stored data with the same codes and messages.
 *
 * Going in, misuse throws a {@link StoreError} `invalidArgument` naming the field (a programming
 * error at the boundary); a telemetry point from a device is data, so a bad one is a reason string
 * the caller counts. Coming out, nothing throws: a parse or shape failure is a reason string that
 * becomes a per-row error value.
 *
 * @example
 * const text = toJsonText(snapshot, 'snapshot');      // throws invalidArgument on a cycle
 * const parsed = parseJson(row.snapshot);             // { ok: false, error } on corrupt text
 */
import type { Result } from '../lib/result.js';
import type { CommandStatus, JsonObject, JsonValue, SnapshotDeadline, TelemetryPoint } from './store.js';
import { COMMAND_STATUSES, StoreError } from './store.js';

/** Longest id, kind, metric or label the store accepts (bytes of UTF-16, generous on purpose). */
export const MAX_NAME_LENGTH = 512;
/** Largest page a query returns. */
export const MAX_PAGE_LIMIT = 10_000;
/** Most buckets a telemetry query downsamples into. */
export const MAX_BUCKETS = 10_000;

function invalid(field: string, message: string): StoreError {
  return new StoreError('invalidArgument', `${field} ${message}`, { field });
}

/** A non-empty string of at most {@link MAX_NAME_LENGTH} characters, or throws naming `field`. */
export function requireName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME_LENGTH)
    throw invalid(field, `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters`);
  return value;
}

/** A wall-clock time in ms, rounded to an integer, or throws naming `field`. */
export function requireTime(value: unknown, field: string): number {
  const ms = typeof value === 'number' ? Math.round(value) : Number.NaN;
  if (!Number.isSafeInteger(ms)) throw invalid(field, 'must be a finite time in milliseconds');
  return ms;
}

/** An integer in `[min, max]`, or throws naming `field`. */
export function requireInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw invalid(field, `must be an integer in [${min}, ${max}]`);
  return value;
}

/** `value` as JSON text (`undefined` stores as `null`), or throws naming `field` (cycles, BigInt). */
export function toJsonText(value: unknown, field: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new StoreError('invalidArgument', `${field} is not JSON-serializable: ${messageOf(cause)}`, {
      field,
      cause,
    });
  }
  return text ?? 'null';
}

/** A plain JSON object (not an array, not null), or throws naming `field`. */
export function requireObject(value: unknown, field: string): JsonObject {
  if (!isJsonObject(value)) throw invalid(field, 'must be a plain object');
  return value;
}

export function requireTags(value: unknown, field: string): readonly string[] {
  if (!Array.isArray(value)) throw invalid(field, 'must be an array of strings');
  value.forEach((tag, i) => {
    requireName(tag, `${field}[${i}]`);
  });
  return value as string[];
}

export function requireDeadlines(value: unknown, field: string): readonly SnapshotDeadline[] {
  const reason = deadlinesProblem(value);
  if (reason !== undefined) throw invalid(field, reason);
  return value as SnapshotDeadline[];
}

export function requireCommandStatus(value: unknown, field: string): CommandStatus {
  if (!isCommandStatus(value)) throw invalid(field, `must be one of ${COMMAND_STATUSES.join(', ')}`);
  return value;
}

/**
 * Why a telemetry point cannot be stored, or undefined if it can. Device data, so never thrown:
 * the store counts and logs refused points and writes the rest.
 */
export function telemetryPointProblem(point: TelemetryPoint): string | undefined {
  if (point === null || typeof point !== 'object') return 'is not an object';
  const { deviceId, metric, deviceTs, receivedAt, value } = point;
  if (typeof deviceId !== 'string' || deviceId.length === 0 || deviceId.length > MAX_NAME_LENGTH)
    return 'deviceId must be a non-empty string';
  if (typeof metric !== 'string' || metric.length === 0 || metric.length > MAX_NAME_LENGTH)
    return 'metric must be a non-empty string';
  if (typeof value !== 'number' || !Number.isFinite(value))
    return `value ${String(value)} is not a finite number`;
  if (typeof receivedAt !== 'number' || !Number.isSafeInteger(Math.round(receivedAt)))
    return 'receivedAt is not a finite time in ms';
  if (deviceTs !== null && (typeof deviceTs !== 'number' || !Number.isSafeInteger(Math.round(deviceTs))))
    return 'deviceTs is neither null nor a finite time in ms';
  const { boot, seq } = point;
  if ((boot === undefined) !== (seq === undefined)) return 'boot and seq must come together or not at all';
  if (boot !== undefined && !isUint32(boot)) return `boot ${String(boot)} is not a uint32`;
  if (seq !== undefined && !isUint32(seq)) return `seq ${String(seq)} is not a uint32`;
  return undefined;
}

function isUint32(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff;
}

// ---------------------------------------------------------------------------------------------
// Coming out: never throws.

/** A parsed value, or why the stored text is not one (a sentence naming what is wrong). */
export type Parsed<T> = Result<T, string>;

/** Parses stored JSON text; corrupt text is a reason, never an exception. */
export function parseJson(text: unknown): Parsed<JsonValue> {
  if (typeof text !== 'string') return { ok: false, error: `expected JSON text, found ${describe(text)}` };
  try {
    return { ok: true, value: JSON.parse(text) as JsonValue };
  } catch (cause) {
    return { ok: false, error: `is not valid JSON (${messageOf(cause)})` };
  }
}

/** Parses stored JSON text that must hold a plain object. */
export function parseJsonObject(text: unknown): Parsed<JsonObject> {
  const parsed = parseJson(text);
  if (!parsed.ok) return parsed;
  return isJsonObject(parsed.value)
    ? { ok: true, value: parsed.value }
    : { ok: false, error: 'is not a JSON object' };
}

/** Parses stored JSON text that must hold an array of strings. */
export function parseStringArray(text: unknown): Parsed<readonly string[]> {
  const parsed = parseJson(text);
  if (!parsed.ok) return parsed;
  const value = parsed.value;
  return Array.isArray(value) && value.every((v) => typeof v === 'string')
    ? { ok: true, value: value as string[] }
    : { ok: false, error: 'is not a JSON array of strings' };
}

/** Parses stored deadlines: a JSON array of `{ label, wallDeadlineMs, delayMs }`. */
export function parseDeadlines(text: unknown): Parsed<readonly SnapshotDeadline[]> {
  const parsed = parseJson(text);
  if (!parsed.ok) return parsed;
  const list: unknown = parsed.value; // checked by deadlinesProblem
  const reason = deadlinesProblem(list);
  return reason === undefined
    ? { ok: true, value: list as readonly SnapshotDeadline[] }
    : { ok: false, error: reason };
}

/** Why `value` is not a valid deadline list, or undefined. */
export function deadlinesProblem(value: unknown): string | undefined {
  if (!Array.isArray(value)) return 'must be an array of { label, wallDeadlineMs, delayMs }';
  for (let i = 0; i < value.length; i++) {
    const d: unknown = value[i];
    if (!isJsonObject(d)) return `[${i}] is not an object`;
    if (typeof d.label !== 'string' || d.label.length === 0) return `[${i}].label must be a non-empty string`;
    if (typeof d.wallDeadlineMs !== 'number' || !Number.isFinite(d.wallDeadlineMs))
      return `[${i}].wallDeadlineMs must be a finite number`;
    if (typeof d.delayMs !== 'number' || !Number.isFinite(d.delayMs) || d.delayMs < 0)
      return `[${i}].delayMs must be a finite number >= 0`;
  }
  return undefined;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isCommandStatus(value: unknown): value is CommandStatus {
  return typeof value === 'string' && (COMMAND_STATUSES as readonly string[]).includes(value);
}

/** A finite number from a row, or undefined (a corrupt or wrongly typed column). */
export function asNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

function describe(value: unknown): string {
  return value === null ? 'NULL' : typeof value;
}
