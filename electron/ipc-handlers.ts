/**
 * The main process's IPC handlers, pure (no `electron` import): what `fleetvisor:call`,
 * `fleetvisor:subscribe` and `fleetvisor:unsubscribe` do, given the sender and a way to push to
 * it. Every handler starts with the same sender check (checklist item 17: one guard applied to
 * every channel), so electron/main.ts only translates Electron's event into an {@link IpcSender}.
 *
 * The host API arrives as a promise: the window opens while the app is still starting, and calls
 * made meanwhile wait for it (or get `unavailable` if it failed to start).
 *
 * One push stream per webContents. IPC has no `bufferedAmount`, so the sink is never
 * `congested`: `webContents.send` queues in Chromium's IPC pipe, and the host's coalescing (at
 * most 20 pushes a second, diffs bounded by the fleet's size) is what bounds it.
 *
 * @example
 * const handlers = createIpcHandlers({ api: started.then(createHostApi), appOrigin: APP_ORIGIN, actor });
 * ipcMain.handle('fleetvisor:call', (e, payload) => handlers.call(senderOf(e), payload));
 */
import type { Envelope, HostApi, PushMessage } from '../src/host/contract.js';
import { type IpcSender, senderRefusal, validateCallPayload } from './ipc-guard.js';
import type { ExportToFileAnswer } from './preload-api.js';

export interface IpcHandlersOptions {
  readonly api: Promise<HostApi>;
  /** The renderer's origin, e.g. `app://fleetvisor`. */
  readonly appOrigin: string;
  /** Who the operator is, for the audit log (the OS user). */
  readonly actor: string;
  /** Told of every refused message (for the log). */
  readonly onRefused?: (channel: string, reason: string, sender: IpcSender) => void;
  /**
   * Saves an export to the file `choosePath` answers (src/host/export-file.ts, given the app's
   * store by main.ts); missing: `fleetvisor:export` answers `unavailable`.
   */
  readonly saveExport?: (
    payload: unknown,
    choosePath: (suggestedName: string) => Promise<string | undefined>,
  ) => Promise<ExportToFileAnswer>;
}

export interface IpcHandlers {
  call(sender: IpcSender, payload: unknown): Promise<Envelope<unknown>>;
  /** Opens (or reopens, with a fresh snapshot) the sender's push stream. */
  subscribe(
    sender: IpcSender,
    send: (message: PushMessage) => void,
  ): Promise<Envelope<{ readonly subscribed: boolean }>>;
  unsubscribe(sender: IpcSender): Promise<Envelope<{ readonly unsubscribed: boolean }>>;
  /**
   * Saves an export (`{ kind, query }`, the query of `GET /api/export/<kind>`) to the file the
   * operator picks with `choosePath` (the save dialog): src/host/export-file.ts.
   */
  export(
    sender: IpcSender,
    payload: unknown,
    choosePath: (suggestedName: string) => Promise<string | undefined>,
  ): Promise<ExportToFileAnswer>;
  /** The webContents went away (closed, crashed, navigated): closes its stream. */
  senderGone(id: number): void;
  /** Closes every stream (at quit). */
  closeAll(): void;
  /** Open streams, for tests and diagnostics. */
  readonly streams: number;
}

interface Stream {
  close: (() => void) | undefined;
  cancelled: boolean;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const refusedEnvelope = (reason: string) => ({
  ok: false as const,
  error: { code: 'unauthorized', message: `refused: ${reason}` },
});

export function createIpcHandlers(options: IpcHandlersOptions): IpcHandlers {
  const streams = new Map<number, Stream>();
  let apiError: string | undefined;
  const api = options.api.catch((error: unknown) => {
    apiError = messageOf(error);
    return undefined;
  });
  const unavailable = () => ({
    ok: false as const,
    error: { code: 'unavailable', message: `the host did not start: ${apiError ?? 'unknown error'}` },
  });

  /** The one guard: null when the sender may go on. */
  const refuse = (channel: string, sender: IpcSender) => {
    const reason = senderRefusal(sender, options.appOrigin);
    if (reason !== null) options.onRefused?.(channel, reason, sender);
    return reason;
  };

  const close = (id: number) => {
    const stream = streams.get(id);
    if (!stream) return false;
    streams.delete(id);
    stream.cancelled = true;
    try {
      stream.close?.();
    } catch {
      // the host's close is best effort at this point
    }
    return true;
  };

  return {
    async call(sender, payload) {
      const refused = refuse('fleetvisor:call', sender);
      if (refused !== null) return refusedEnvelope(refused);
      const checked = validateCallPayload(payload);
      if (!checked.ok) {
        options.onRefused?.('fleetvisor:call', checked.reason, sender);
        return { ok: false, error: { code: 'badRequest', message: checked.reason } };
      }
      const host = await api;
      if (!host) return unavailable();
      try {
        return await host.call(checked.method, checked.args, { actor: options.actor });
      } catch (error) {
        return { ok: false, error: { code: 'internal', message: messageOf(error) } };
      }
    },

    async subscribe(sender, send) {
      const refused = refuse('fleetvisor:subscribe', sender);
      if (refused !== null) return refusedEnvelope(refused);
      close(sender.id);
      const stream: Stream = { close: undefined, cancelled: false };
      streams.set(sender.id, stream);
      const host = await api;
      if (!host) {
        if (streams.get(sender.id) === stream) streams.delete(sender.id);
        return unavailable();
      }
      // Unsubscribed, resubscribed or gone while the host was starting.
      if (stream.cancelled) return { ok: true, value: { subscribed: false } };
      try {
        stream.close = host.openStream({ send, congested: () => false });
      } catch (error) {
        streams.delete(sender.id);
        return { ok: false, error: { code: 'internal', message: messageOf(error) } };
      }
      return { ok: true, value: { subscribed: true } };
    },

    async unsubscribe(sender) {
      const refused = refuse('fleetvisor:unsubscribe', sender);
      if (refused !== null) return refusedEnvelope(refused);
      return { ok: true, value: { unsubscribed: close(sender.id) } };
    },

    async export(sender, payload, choosePath) {
      const refused = refuse('fleetvisor:export', sender);
      if (refused !== null) return { ok: false, code: 'unauthorized', message: `refused: ${refused}` };
      if (!options.saveExport) return { ok: false, code: 'unavailable', message: 'export is not available' };
      try {
        return await options.saveExport(payload, choosePath);
      } catch (error) {
        return { ok: false, code: 'failed', message: messageOf(error) };
      }
    },

    senderGone(id) {
      close(id);
    },

    closeAll() {
      for (const id of [...streams.keys()]) close(id);
    },

    get streams() {
      return streams.size;
    },
  };
}
