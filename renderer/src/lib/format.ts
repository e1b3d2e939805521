/**
 * Formatting for the views: relative times, durations, byte sizes, rates, JSON previews. Pure
 * functions of their inputs (the caller passes `now`), so a table row renders the same twice.
 *
 * @example
 * formatAgo(now - 4_000, now);   // '4 s ago'
 * formatDuration(300_000);       // '5 min'
 * formatIntensity({ restartsInWindow: 2, maxRestarts: 3, periodMs: 5_000 }); // '2/3 in 5 s'
 */
import type { Json, TreeNode } from '../../../src/host/contract.js';

export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${trim(ms / 1_000)} s`;
  if (abs < 3_600_000) return `${trim(ms / 60_000)} min`;
  if (abs < 86_400_000) return `${trim(ms / 3_600_000)} h`;
  return `${trim(ms / 86_400_000)} d`;
}

/** Countdown style: `1:05`, `12.3 s`. */
export function formatRemaining(ms: number): string {
  if (ms <= 0) return '0.0 s';
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.ceil(ms / 1_000);
  const h = Math.floor(s / 3_600);
  const m = Math.floor((s % 3_600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}

export function formatAgo(at: number | null, now: number): string {
  if (at === null) return 'never';
  const ms = now - at;
  if (ms < 1_000) return 'now';
  if (ms < 60_000) return `${Math.floor(ms / 1_000)} s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ago`;
  return `${Math.floor(ms / 86_400_000)} d ago`;
}

export function formatTime(at: number): string {
  const d = new Date(at);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

export function formatDateTime(at: number): string {
  const d = new Date(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatNumber(n: number | null | undefined, digits = 0): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function formatIntensity(intensity: NonNullable<TreeNode['intensity']>): string {
  return `${intensity.restartsInWindow}/${intensity.maxRestarts} in ${formatDuration(intensity.periodMs)}`;
}

/** One-line JSON for tables; device data is shown as text, never as markup. */
export function jsonPreview(value: Json | undefined, max = 160): string {
  if (value === undefined) return '';
  let text: string;
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function jsonPretty(value: Json | undefined): string {
  if (value === undefined) return '';
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

function trim(n: number): string {
  return n >= 10 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/**
 * The unit of a metric, from its name, for the names the simulator, the demo and the usual device
 * firmwares use (`temp` °C, `rssi` dBm, `uptime` s …); '' when unknown. The contract carries no
 * units yet, so a metric named otherwise shows its bare number.
 */
export function unitOf(metric: string): string {
  const name = metric.toLowerCase().replace(/[^a-z]/g, '');
  return METRIC_UNITS[name] ?? '';
}

const METRIC_UNITS: Readonly<Record<string, string>> = {
  temp: '°C',
  temperature: '°C',
  rssi: 'dBm',
  uptime: 's',
  humidity: '%',
  battery: '%',
  voltage: 'V',
  current: 'A',
  power: 'W',
  energy: 'Wh',
  pressure: 'bar',
  flow: 'l/min',
  rpm: 'rpm',
  heap: 'B',
  freeheap: 'B',
};

/**
 * A list of device ids for a narrow cell: "—", the one id, or the count first ("16: pump-1, pump-2,
 * pump-3, …"), so a cell cut short hides ids, never how many there are.
 */
export function formatDeviceList(ids: readonly string[]): string {
  if (ids.length === 0) return '—';
  if (ids.length === 1) return ids[0] as string;
  return `${ids.length}: ${ids.slice(0, 3).join(', ')}${ids.length > 3 ? ', …' : ''}`;
}
