/**
 * Entry point: picks the client (the simulated fleet only when the URL says `?fake=N` in a
 * development or `--mode fake` build, never in production; otherwise
 * the Electron preload or the HTTP client), starts the live store and renders the app inside an
 * error boundary, so a bug in one view shows a message rather than a blank window.
 *
 * @example
 * // index.html?fake=5000 → 5,000 simulated devices, no host needed
 * // index.html?fake=5000&hz=1 → the same, each connected device reporting telemetry once a second
 */
import type { ErrorInfo, ReactNode } from 'react';
import { Component, StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import type { TypedClient } from '../../src/host/contract.js';
import { App } from './App.js';
import { createClient, describeEndpoint } from './api/client.js';
import type { TransportDetail, TransportStatus } from './store/live-store.js';
import { createLiveStore } from './store/live-store.js';
import { LiveContext } from './store/use-live.js';
import './styles.css';

/** Set by renderer/vite.config.ts: false in the production build, which has no simulated fleet. */
declare const __FLEETVISOR_FAKE_FLEET__: boolean;

const MAX_FAKE_DEVICES = 50_000;

/** `?fake=N` with N a positive integer, or undefined. */
export function fakeFleetSize(search: string): number | undefined {
  const value = new URLSearchParams(search).get('fake');
  if (value === null || !/^\d{1,6}$/.test(value)) return undefined;
  const n = Number(value);
  return n > 0 ? Math.min(n, MAX_FAKE_DEVICES) : undefined;
}

/** `&hz=F` with the simulated fleet: telemetry reports per second per device (0 < F ≤ 10). */
export function fakeTelemetryHz(search: string): number | undefined {
  const value = new URLSearchParams(search).get('hz');
  if (value === null || !/^\d{1,2}(\.\d{1,3})?$/.test(value)) return undefined;
  const hz = Number(value);
  return hz > 0 && hz <= 10 ? hz : undefined;
}

class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  override componentDidCatch(error: Error, info: ErrorInfo) {
    console.error('view crashed', error, info.componentStack);
  }
  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="placeholder error crash" role="alert">
        <strong>This view crashed.</strong>
        <pre className="json">{String(this.state.error.stack ?? this.state.error.message)}</pre>
        <button type="button" className="btn" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}

let relay: (status: TransportStatus, detail?: TransportDetail) => void = () => {};

async function boot() {
  const fake = __FLEETVISOR_FAKE_FLEET__ ? fakeFleetSize(window.location.search) : undefined;
  let client: TypedClient;
  let endpoint: string;
  if (fake !== undefined) {
    const { createFakeClient } = await import('./dev/fake-client.js');
    const telemetryHz = fakeTelemetryHz(window.location.search);
    client = createFakeClient({ devices: fake, ...(telemetryHz !== undefined ? { telemetryHz } : {}) });
    endpoint = 'the simulated fleet';
  } else {
    // The store does not exist yet when the client is made; the relay forwards once it does.
    client = createClient({ onStatus: (status, detail) => relay(status, detail) });
    endpoint = describeEndpoint();
  }
  const store = createLiveStore(client);
  relay = (status, detail) => store.setTransport(status, detail);
  store.start();
  const root = document.getElementById('root');
  if (!root) throw new Error('index.html has no #root');
  createRoot(root).render(
    <StrictMode>
      <ErrorBoundary>
        <LiveContext value={{ store, client, endpoint }}>
          <App fake={fake} />
        </LiveContext>
      </ErrorBoundary>
    </StrictMode>,
  );
}

void boot();
