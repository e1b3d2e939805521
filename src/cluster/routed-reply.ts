/**
 * What a routed operation answers (src/cluster/command-router.ts, src/cluster/routed-ops.ts), and
 * how it is kept in the `result` column of `fleetvisor_routed_actions`: only what the contract
 * carries is written, and a stored answer is checked when read, so a damaged row is a clear
 * `badAnswer`, never a crash. An action's reply keeps the fleet's `ActionReply` fields; any other
 * kind's answer is the API's envelope, its value JSON.
 *
 * @example
 * const text = replyText({ ok: false, error: { code: 'busy', message: 'updating firmware' } });
 * parseReply(text); // { ok: false, error: { code: 'busy', message: 'updating firmware' } }
 * parseReply('{"ok":'); // { ok: false, error: { code: 'badAnswer', … } }
 * parseAnswer('device', answerText({ ok: true, value: { id: 'pump-7' } })); // { ok: true, value: { id: 'pump-7' } }
 */
import type { ActionReply } from '../devices/fleet.js';
import type { JsonValue } from '../lib/json.js';
import type { Result } from '../lib/result.js';
import type { RoutedAnswer, RoutedKind } from './routed-ops.js';

/** A refusal, as the fleet (or the host) gives it: a code, a sentence, maybe when to retry. */
export interface RoutedError {
  readonly code: string;
  readonly message: string;
  readonly retryAt?: number;
}

/** What an action answers, wherever it ran. */
export type RoutedReply = Result<ActionReply, RoutedError>;

/** A refusal: the same shape whatever the operation answers when it succeeds. */
export type RoutedRefusal = { readonly ok: false; readonly error: RoutedError };

export const refuse = (code: string, message: string): RoutedRefusal => ({
  ok: false,
  error: { code, message },
});

export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

type Stored = { ok?: unknown; value?: unknown; error?: Record<string, unknown> } | undefined;

function readStored(text: string | null): Stored {
  try {
    const v: unknown = text === null ? undefined : JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Stored) : undefined;
  } catch {
    return undefined;
  }
}

/** A stored refusal's fields the contract carries; undefined when it is none. */
function storedError(o: Stored): RoutedError | undefined {
  if (o?.ok === false && o.error && typeof o.error.code === 'string' && typeof o.error.message === 'string')
    return {
      code: o.error.code,
      message: o.error.message,
      ...(typeof o.error.retryAt === 'number' ? { retryAt: o.error.retryAt } : {}),
    };
  return undefined;
}

const unreadable = (text: string | null) =>
  refuse('badAnswer', `the owner's answer could not be read: ${String(text).slice(0, 200)}`);

/** The stored reply of an action, checked: a damaged row is a clear error, never a crash. */
export function parseReply(text: string | null): RoutedReply {
  const s = readStored(text);
  const o = s as { ok?: unknown; value?: Record<string, unknown> } | undefined;
  if (o?.ok === true && o.value && typeof o.value.commandId === 'string' && typeof o.value.state === 'string')
    return {
      ok: true,
      value: {
        commandId: o.value.commandId,
        state: o.value.state,
        ...(typeof o.value.commandStatus === 'string' ? { commandStatus: o.value.commandStatus } : {}),
      },
    };
  const error = storedError(s);
  return error ? { ok: false, error } : unreadable(text);
}

const errorJson = (e: RoutedError) => ({
  code: e.code,
  message: e.message,
  ...(e.retryAt !== undefined ? { retryAt: e.retryAt } : {}),
});

/** Only what the contract carries: a Failure may hold more than JSON can. */
export function replyText(r: RoutedReply): string {
  return JSON.stringify(r.ok ? { ok: true, value: r.value } : { ok: false, error: errorJson(r.error) });
}

/** Any kind's answer as stored: an action's by {@link replyText}, another's value as the JSON it is. */
export function answerText(kind: RoutedKind, r: RoutedAnswer): string {
  if (kind === 'act') return replyText(r as RoutedReply);
  return JSON.stringify(r.ok ? { ok: true, value: r.value } : { ok: false, error: errorJson(r.error) });
}

/** Any kind's stored answer, checked: an action's by {@link parseReply}; another's needs a value. */
export function parseAnswer<K extends RoutedKind>(kind: K, text: string | null): RoutedAnswer<K> {
  if (kind === 'act') return parseReply(text) as RoutedAnswer<K>;
  const s = readStored(text);
  if (s?.ok === true && s.value !== undefined)
    return { ok: true, value: s.value as JsonValue } as RoutedAnswer<K>;
  const error = storedError(s);
  return error ? { ok: false, error } : unreadable(text);
}
