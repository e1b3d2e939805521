/**
 * The main process's checks on every IPC message, pure (no `electron` import): who sent it (the
 * app's own origin, main frame only — checklist item 17) and what it carries (a known method, a
 * bounded size). The arguments themselves are then validated by the method's zod schema in
 * `HostApi.call`, as for every transport.
 *
 * @example
 * const refused = senderRefusal({ id, url: event.senderFrame?.url, isMainFrame }, APP_ORIGIN);
 * const payload = validateCallPayload(raw); // { ok: true, method, args } | { ok: false, reason }
 */
import type { Method } from '../src/host/contract.js';
import { METHODS } from '../src/host/contract.js';
import { originOf } from './window-options.js';

/**
 * Most characters a call's payload may take as JSON. The largest legitimate call, `act` on
 * 10 000 devices (ids of up to 64 characters), is about 0.7 MB.
 */
export const MAX_CALL_PAYLOAD_CHARS = 1_048_576;

/** What the guard needs to know about the sender of an IPC message. */
export interface IpcSender {
  /** The sending webContents' id (one push stream per webContents). */
  readonly id: number;
  /** `event.senderFrame.url`; undefined when the frame is gone. */
  readonly url: string | undefined;
  /** Whether the sending frame is its page's main frame (not an iframe). */
  readonly isMainFrame: boolean;
}

/** Whether a frame at `frameUrl` is the app's own page (same origin; `file:`, remote, `about:` refused). */
export function isTrustedSender(frameUrl: string | undefined, appOrigin: string): boolean {
  return frameUrl !== undefined && originOf(frameUrl) === appOrigin;
}

/** Why a sender is refused, or null when it is trusted. */
export function senderRefusal(sender: IpcSender, appOrigin: string): string | null {
  if (sender.url === undefined) return 'the sending frame is gone';
  if (!sender.isMainFrame) return 'only the main frame may call the host';
  if (!isTrustedSender(sender.url, appOrigin)) return `untrusted origin: ${originOf(sender.url) ?? 'none'}`;
  return null;
}

export type CallPayload =
  | { readonly ok: true; readonly method: Method; readonly args: unknown }
  | { readonly ok: false; readonly reason: string };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Size as JSON, or undefined when it is not JSON (cycles, BigInt, nesting deep enough to overflow). */
function jsonLength(value: unknown): number | undefined {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return undefined;
  }
}

/** Checks the shape `{ method, args }`: a plain object, a known method, JSON of bounded size. */
export function validateCallPayload(payload: unknown, maxChars = MAX_CALL_PAYLOAD_CHARS): CallPayload {
  if (!isPlainObject(payload)) return { ok: false, reason: 'a call is an object { method, args }' };
  const extra = Object.keys(payload).filter((k) => k !== 'method' && k !== 'args');
  if (extra.length > 0) return { ok: false, reason: `unexpected fields: ${extra.join(', ')}` };
  const method = payload.method;
  if (typeof method !== 'string' || !Object.hasOwn(METHODS, method))
    return {
      ok: false,
      reason: `unknown method: ${typeof method === 'string' ? JSON.stringify(method.slice(0, 64)) : typeof method}`,
    };
  const size = jsonLength(payload);
  if (size === undefined) return { ok: false, reason: 'the arguments are not JSON' };
  if (size > maxChars)
    return { ok: false, reason: `the call is too large (${size} > ${maxChars} characters)` };
  return { ok: true, method: method as Method, args: payload.args };
}
