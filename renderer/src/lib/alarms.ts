/**
 * Alarms on the renderer side: the counts for the navigation (polled, since no push carries
 * them) and desktop notifications of new alarms through the browser's Notification API — asked
 * for only when the operator presses the button (never on load), remembered in this browser's
 * localStorage, and off again with the same button. In the Electron shell the main process shows
 * its own notifications, so the renderer there never asks.
 *
 * @example
 * const counts = useAlarmWatch();          // { active, unacked, … }; notifies new unacked alarms
 * await enableNotifications();             // the permission prompt, from a click
 */
import { useEffect, useRef, useSyncExternalStore } from 'react';
import type { AlarmCounts, AlarmView } from '../../../src/host/contract.js';
import { useCall } from './hooks.js';

/** How often the counts and the newest alarms are asked for. */
export const ALARMS_REFRESH_MS = 2_000;
const STORAGE_KEY = 'fleetvisor.alarmNotifications';

export type NotifyState = 'unsupported' | 'shell' | 'off' | 'on' | 'denied';

const listeners = new Set<() => void>();
const emit = () => {
  for (const l of [...listeners]) l();
};

/** Electron's preload exposes `window.fleetvisor`; its main process notifies by itself. */
const inShell = () => typeof window !== 'undefined' && 'fleetvisor' in window;

function readState(): NotifyState {
  if (inShell()) return 'shell';
  if (typeof Notification === 'undefined') return 'unsupported';
  if (Notification.permission === 'denied') return 'denied';
  let wanted = false;
  try {
    wanted = localStorage.getItem(STORAGE_KEY) === 'on';
  } catch {
    // storage disabled: off
  }
  return wanted && Notification.permission === 'granted' ? 'on' : 'off';
}

export function useNotifyState(): NotifyState {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    readState,
    readState,
  );
}

/** Asks the browser (from a click only) and turns notifications on if granted. */
export async function enableNotifications(): Promise<NotifyState> {
  if (typeof Notification === 'undefined' || inShell()) return readState();
  const answer = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
  try {
    if (answer === 'granted') localStorage.setItem(STORAGE_KEY, 'on');
  } catch {
    // storage disabled
  }
  emit();
  return readState();
}

export function disableNotifications(): void {
  try {
    localStorage.removeItem(STORAGE_KEY);
  } catch {
    // storage disabled
  }
  emit();
}

const EMPTY: AlarmCounts = { active: 0, unacked: 0, shelved: 0, bySeverity: {} };

/**
 * The counts for the navigation; while notifications are on, each alarm raised after the page
 * loaded (a higher id than any seen) is shown once.
 */
export function useAlarmWatch(): AlarmCounts {
  const r = useCall((c) => c.call('alarms', { state: 'unacked', limit: 20 }), [], {
    refreshMs: ALARMS_REFRESH_MS,
  });
  const seen = useRef<number | null>(null);
  const items: readonly AlarmView[] = r.value?.items ?? [];
  useEffect(() => {
    if (r.value === undefined) return;
    const top = items.reduce((m, a) => Math.max(m, a.id), 0);
    const before = seen.current;
    seen.current = Math.max(before ?? 0, top);
    if (before === null || readState() !== 'on') return;
    for (const a of items)
      if (a.id > before)
        try {
          new Notification(`${a.severity} alarm: ${a.deviceId}`, { body: a.message, tag: `alarm-${a.id}` });
        } catch {
          // some browsers allow notifications only from a service worker: the nav count remains
        }
  }, [r.value, items]);
  return r.value?.counts ?? EMPTY;
}
