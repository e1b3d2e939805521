/**
 * The operator's shell: a left nav (Fleet, Discovered, Tree, System, Events, Firmware), a header with the
 * connection status, and the current view. The view and the selected device live in the URL's
 * query (`?view=tree&device=pump-7`), so a link opens them and the browser's Back and Forward move
 * between them; other parameters (`fake`, `hz`) and the hash (where the access token arrives) are
 * left as they are. Query, not path: the bundle loads its assets by relative URLs (and from file://
 * in Electron).
 *
 * Keyboard: Alt+1…6 switch views; each view documents its own keys.
 *
 * @example
 * <LiveContext value={{ store, client, endpoint }}><App /></LiveContext>
 */
import { useCallback, useEffect, useState } from 'react';
import { ConnectionStatus } from './components/ConnectionStatus.js';
import { useAlarmWatch } from './lib/alarms.js';
import { useWaitingCount } from './lib/discovered.js';
import { useLive } from './store/use-live.js';
import { AlarmsView } from './views/AlarmsView.js';
import { DeviceDetailView } from './views/DeviceDetail.js';
import { DiscoveredView } from './views/DiscoveredView.js';
import { EventsView } from './views/EventsView.js';
import { FirmwareView } from './views/FirmwareView.js';
import type { FleetUi } from './views/FleetView.js';
import { FleetView, initialFleetUi } from './views/FleetView.js';
import { SettingsView } from './views/SettingsView.js';
import { SystemView } from './views/SystemView.js';
import { TreeView } from './views/TreeView.js';

type Section = 'settings' | 'fleet' | 'discovered' | 'tree' | 'system' | 'events' | 'firmware' | 'alarms';
type Route =
  | { readonly section: Section; readonly device?: undefined }
  | { readonly section: Section; readonly device: string };

const DEVICE_PARAM_MAX = 64;

/** The route a URL's query names; unknown views fall back to the fleet. */
export function routeFromSearch(search: string): Route {
  const params = new URLSearchParams(search);
  const view = params.get('view');
  const section = SECTIONS.find((s) => s.id === view)?.id ?? 'fleet';
  const device = params.get('device');
  return device && device.length <= DEVICE_PARAM_MAX ? { section, device } : { section };
}

/** The query for a route, keeping the parameters that are not the route's. */
export function searchForRoute(route: Route, search: string): string {
  const params = new URLSearchParams(search);
  if (route.section === 'fleet') params.delete('view');
  else params.set('view', route.section);
  if (route.device) params.set('device', route.device);
  else params.delete('device');
  const text = params.toString();
  return text ? `?${text}` : '';
}

const SECTIONS: readonly { id: Section; label: string; icon: string }[] = [
  { id: 'fleet', label: 'Fleet', icon: '▦' },
  { id: 'discovered', label: 'Discovered', icon: '⊕' },
  { id: 'tree', label: 'Tree', icon: '⊶' },
  { id: 'system', label: 'System', icon: '◔' },
  { id: 'events', label: 'Events', icon: '≡' },
  { id: 'firmware', label: 'Firmware', icon: '⇪' },
  { id: 'alarms', label: 'Alarms', icon: '⚠' },
  { id: 'settings', label: 'Settings', icon: '⚙' },
];

export function App({ fake }: { readonly fake?: number | undefined }) {
  const [route, setRouteState] = useState<Route>(() => routeFromSearch(window.location.search));
  // Each navigation is a history entry; Back and Forward come back through popstate.
  const setRoute = useCallback((update: (r: Route) => Route) => {
    setRouteState((old) => {
      const next = update(old);
      const search = searchForRoute(next, window.location.search);
      if (search !== window.location.search)
        try {
          window.history.pushState(null, '', `${window.location.pathname}${search}${window.location.hash}`);
        } catch {
          // a page whose URL cannot change (some file:// setups): navigation still works, unaddressed
        }
      return next;
    });
  }, []);
  useEffect(() => {
    const onPop = () => setRouteState(routeFromSearch(window.location.search));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const [fleetUi, setFleetUiState] = useState<FleetUi>(initialFleetUi);
  const [eventsDevice, setEventsDevice] = useState('');
  const setFleetUi = useCallback((update: (ui: FleetUi) => FleetUi) => setFleetUiState(update), []);
  const failed = useLive((s) => s.stats?.devices.failed ?? 0);
  const waiting = useWaitingCount();
  const alarmCounts = useAlarmWatch();

  const openDevice = useCallback(
    (id: string) => setRoute((r) => ({ section: r.section, device: id })),
    [setRoute],
  );
  const back = useCallback(() => setRoute((r) => ({ section: r.section })), [setRoute]);
  const go = useCallback((section: Section) => setRoute(() => ({ section })), [setRoute]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey) return;
      const i = Number(e.key) - 1;
      const section = SECTIONS[i];
      if (section) {
        e.preventDefault();
        go(section.id);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [go]);

  const title = route.device ?? SECTIONS.find((s) => s.id === route.section)!.label;
  useEffect(() => {
    document.title = `${title} · Fleetvisor`;
  }, [title]);

  return (
    <div className="shell">
      <nav className="nav" aria-label="Views">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            ◈
          </span>
          <span>Fleetvisor</span>
        </div>
        <ul>
          {SECTIONS.map((s, i) => (
            <li key={s.id}>
              <button
                type="button"
                className={route.section === s.id ? 'on' : ''}
                aria-current={route.section === s.id && !route.device ? 'page' : undefined}
                onClick={() => go(s.id)}
                data-testid={`nav-${s.id}`}
                title={`${s.label} (Alt+${i + 1})`}
              >
                <span className="nav-icon" aria-hidden="true">
                  {s.icon}
                </span>
                {s.label}
                {s.id === 'fleet' && failed > 0 ? <span className="nav-count tone-err">{failed}</span> : null}
                {s.id === 'alarms' && alarmCounts.unacked > 0 ? (
                  <span
                    className={`nav-count ${(alarmCounts.bySeverity.critical ?? 0) + (alarmCounts.bySeverity.major ?? 0) > 0 ? 'tone-err' : 'tone-warn'}`}
                    data-testid="nav-alarms-count"
                    title="Open alarms not acknowledged"
                  >
                    {alarmCounts.unacked}
                  </span>
                ) : null}
                {s.id === 'discovered' && waiting > 0 ? (
                  <span className="nav-count tone-warn" data-testid="nav-discovered-count">
                    {waiting}
                  </span>
                ) : null}
              </button>
            </li>
          ))}
        </ul>
        {fake ? (
          <div className="fake-note small-text">Simulated fleet ({fake} devices) — not a real host</div>
        ) : null}
      </nav>
      <div className="main">
        <header className="header">
          <h1 className="view-title">
            {route.device ? (
              <>
                <button type="button" className="linklike" onClick={back}>
                  {SECTIONS.find((s) => s.id === route.section)!.label}
                </button>
                <span className="muted"> / </span>
                <span className="mono">{route.device}</span>
              </>
            ) : (
              title
            )}
          </h1>
          <ConnectionStatus />
        </header>
        <main className="content">
          {route.device ? (
            <DeviceDetailView
              key={route.device}
              id={route.device}
              onBack={back}
              onOpenEvents={(id) => {
                setEventsDevice(id);
                go('events');
              }}
            />
          ) : route.section === 'fleet' ? (
            <FleetView
              ui={fleetUi}
              setUi={setFleetUi}
              onOpen={openDevice}
              onOpenDiscovered={() => go('discovered')}
              waiting={waiting}
            />
          ) : route.section === 'discovered' ? (
            <DiscoveredView onOpenDevice={openDevice} />
          ) : route.section === 'tree' ? (
            <TreeView onOpenDevice={openDevice} />
          ) : route.section === 'system' ? (
            <SystemView />
          ) : route.section === 'firmware' ? (
            <FirmwareView />
          ) : route.section === 'alarms' ? (
            <AlarmsView onOpenDevice={openDevice} />
          ) : route.section === 'settings' ? (
            <SettingsView />
          ) : (
            <EventsView initialDevice={eventsDevice} onOpenDevice={openDevice} />
          )}
        </main>
      </div>
    </div>
  );
}
