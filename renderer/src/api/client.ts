/**
 * The renderer's one way to reach the host, as a {@link TypedClient}: inside the Electron shell the
 * preload exposes one function per contract method on `window.fleetvisor` (never a generic IPC
 * channel), in a browser the HTTP + WebSocket client talks to `fleetvisor serve`.
 *
 * A call never throws: a rejected promise (a dead IPC channel, a network error) comes back as an
 * `unavailable` envelope, so every view handles one shape.
 *
 * @example
 * const client = createClient();
 * const r = await client.call('device', { id: 'pump-7' });
 * if (r.ok) r.value.state; else r.error.message;
 */
import type {
  ArgsOf,
  Envelope,
  Method,
  PushMessage,
  Results,
  TypedClient,
} from '../../../src/host/contract.js';
import type { ConnectionDetail, ConnectionStatus } from './http-client.js';
import { createHttpClient } from './http-client.js';

/** What the Electron preload exposes: one function per method, plus the push stream. */
export type PreloadApi = {
  readonly [M in Method]?: (args: ArgsOf<M>) => Promise<Envelope<Results[M]>>;
} & {
  readonly subscribe: (listener: (message: PushMessage) => void) => () => void;
  /**
   * The desktop shell's export: saved to a file picked in a save dialog (src/host/export-file.ts).
   * Optional, so an older preload without it is still a valid bridge.
   */
  readonly exportToFile?: (
    kind: string,
    query: string,
  ) => Promise<
    | { readonly ok: true; readonly path: string; readonly fileName: string; readonly bytes: number }
    | { readonly ok: false; readonly code: string; readonly message: string }
  >;
};

declare global {
  interface Window {
    readonly fleetvisor?: PreloadApi;
  }
}

export interface ClientOptions {
  /** Told when the browser's socket opens, closes or is refused (the preload has no such states). */
  readonly onStatus?: (status: ConnectionStatus, detail?: ConnectionDetail) => void;
}

export function createClient(options: ClientOptions = {}): TypedClient {
  const preload = typeof window === 'undefined' ? undefined : window.fleetvisor;
  if (preload) return fromPreload(preload);
  return createHttpClient(options.onStatus ? { onStatus: options.onStatus } : {});
}

/** Where the client talks to, in words, for the connection banner. */
export function describeEndpoint(): string {
  if (typeof window === 'undefined') return 'the host';
  if (window.fleetvisor) return 'the desktop app';
  return window.location.host || 'the host';
}

export function fromPreload(api: PreloadApi): TypedClient {
  return {
    async call<M extends Method>(method: M, args: ArgsOf<M>): Promise<Envelope<Results[M]>> {
      const fn = api[method] as ((args: ArgsOf<M>) => Promise<Envelope<Results[M]>>) | undefined;
      if (typeof fn !== 'function')
        return { ok: false, error: { code: 'badRequest', message: `the shell offers no '${method}'` } };
      try {
        return await fn(args);
      } catch (error) {
        return { ok: false, error: { code: 'unavailable', message: messageOf(error) } };
      }
    },
    subscribe: (listener) => api.subscribe(listener),
  };
}

/** The `act` call's arguments as the contract's zod schema types them (mutable JSON). */
export type ActArgs = NonNullable<ArgsOf<'act'>['args']>;

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
