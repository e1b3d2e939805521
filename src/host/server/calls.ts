/**
 * How a call reaches the {@link HostApi}, the same over `POST /api/call` and a WebSocket `call`
 * message: args nested too deep are refused, and a handler that throws becomes an `internal`
 * envelope (logged) instead of a broken connection. Also the server's endpoint paths.
 *
 * @example
 * const invoke = createInvoker(api, 'operator', logger);
 * const envelope = await invoke('devices.list', {});
 */
import type { Logger } from '../../runtime/runtime.js';
import type { ApiError, Envelope, HostApi } from '../contract.js';
import { jsonDeeperThan, MAX_ARGS_DEPTH } from '../security.js';

export const CALL_PATH = '/api/call';
export const EXPORT_PREFIX = '/api/export/';
export const STREAM_PATH = '/api/stream';

/**
 * The header the command line (src/host/app-client.ts) sends, so its calls are audited as `cli`
 * rather than as the UI's `operator` (issue 14 §3: who, UI, CLI, API or reconciler). Any other
 * value, or none, is the UI's. The token decides whether a call is let in; this only names it.
 */
export const CLIENT_HEADER = 'x-fleetvisor-client';

/** Who a call is audited as when it is not the UI: the command line. */
export type CallVia = 'cli';

export type Invoke = (method: string, args: unknown, via?: CallVia) => Promise<Envelope<unknown>>;

export function failure(code: ApiError['code'], message: string): Envelope<never> {
  return { ok: false, error: { code, message } };
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export const tooDeep = (): Envelope<never> =>
  failure('badRequest', `args nest deeper than ${MAX_ARGS_DEPTH} levels`);

export function createInvoker(api: HostApi, actor: string, logger: Logger): Invoke {
  return async (method, args, via) => {
    if (jsonDeeperThan(args, MAX_ARGS_DEPTH)) return tooDeep();
    try {
      return await api.call(method, args ?? {}, { actor: via ?? actor });
    } catch (error) {
      logger.error('api call threw', { method, error: (error as Error)?.message });
      return failure('internal', 'internal error');
    }
  };
}
