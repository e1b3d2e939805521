/**
 * What a routed action answers (src/cluster/command-router.ts), and how it is kept in the
 * `result` column of `fleetvisor_routed_actions`: only what the contract carries is written, and a
 * stored reply is checked when read, so a damaged row is a clear `badAnswer`, never a crash.
 *
 * @example
 * const text = replyText({ ok: false, error: { code: 'busy', message: 'updating firmware' } });
 * parseReply(text); // { ok: false, error: { code: 'busy', message: 'updating firmware' } }
 * parseReply('{"ok":'); // { ok: false, error: { code: 'badAnswer', … } }
 */
import type { ActionReply } from '../devices/fleet.js';
import type { Result } from '../lib/result.js';

/** A refusal, as the fleet (or the host) gives it: a code, a sentence, maybe when to retry. */
export interface RoutedError {
  readonly code: string;
  readonly message: string;
  readonly retryAt?: number;
}

/** What an action answers, wherever it ran. */
export type RoutedReply = Result<ActionReply, RoutedError>;

export const refuse = (code: string, message: string): RoutedReply => ({
  ok: false,
  error: { code, message },
});

export const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** The stored reply, checked: a damaged row is a clear error, never a crash. */
export function parseReply(text: string | null): RoutedReply {
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
export function replyText(r: RoutedReply): string {
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
