/**
 * React bindings for the live store and the client: one context carries both; `useLive` selects
 * a slice with `useSyncExternalStore`, so a view re-renders only when its slice changed, and at
 * most once per animation frame (the store's cadence).
 *
 * @example
 * const tree = useLive((s) => s.tree);
 * const client = useClient();
 */
import { createContext, useContext, useSyncExternalStore } from 'react';
import type { TypedClient } from '../../../src/host/contract.js';
import type { LiveState, LiveStore } from './live-store.js';

export interface LiveContextValue {
  readonly store: LiveStore;
  readonly client: TypedClient;
  /** Where the client talks to, for the connection banner (e.g. `ws://127.0.0.1:7420`). */
  readonly endpoint: string;
}

export const LiveContext = createContext<LiveContextValue | null>(null);

function useLiveContext(): LiveContextValue {
  const value = useContext(LiveContext);
  if (!value) throw new Error('LiveContext missing: render inside <LiveContext value={…}>');
  return value;
}

export function useLive<T>(selector: (state: LiveState) => T): T {
  const { store } = useLiveContext();
  return useSyncExternalStore(store.subscribe, () => selector(store.getState()));
}

export function useStore(): LiveStore {
  return useLiveContext().store;
}

export function useClient(): TypedClient {
  return useLiveContext().client;
}

export function useEndpoint(): string {
  return useLiveContext().endpoint;
}
