/**
 * A rollout's maintenance window (docs/firmware.md §8): as an operator writes it
 * (`mon-fri 22:00-02:00 utc`), read and written back, and whether it is open at a moment and
 * when it opens next. Pure: the rollout (rollout-process.ts) asks it with its clock's time.
 *
 * @example
 * const w = parseMaintenanceWindow('mon-fri 02:00-04:00 utc');
 * if (w.ok) maintenanceWindowAt(w.value, Date.now()); // { open: false, opensAt: 1767… }
 */
import { err, type Failure, ok, type Result } from '../lib/result.js';

/**
 * A recurring maintenance window: it opens at `startMinute` of the day (in the host's time zone or
 * UTC) on `days`, and stays open `durationMinutes` (it may run past midnight).
 */
export interface MaintenanceWindow {
  /** Minute of the day it opens, 0 … 1439 (02:30 is 150). */
  readonly startMinute: number;
  /** How long it stays open, 1 … 1440 minutes. */
  readonly durationMinutes: number;
  /** Days it opens on, 0 = Sunday … 6 = Saturday; default every day. */
  readonly days?: readonly number[];
  /** Default `local` (the host's time zone). */
  readonly zone?: 'local' | 'utc';
}

const MINUTE = 60_000;

/** When the window opens on the calendar day of `at` (ms), and that day's weekday. */
function openingOn(w: MaintenanceWindow, at: number): { opens: number; day: number } {
  const d = new Date(at);
  if (w.zone === 'utc') {
    const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    return { opens: midnight + w.startMinute * MINUTE, day: d.getUTCDay() };
  }
  const opens = new Date(d.getFullYear(), d.getMonth(), d.getDate(), 0, w.startMinute).getTime();
  return { opens, day: d.getDay() };
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/**
 * Reads a window as an operator writes it: `HH:MM-HH:MM`, optionally after days (`mon-fri`,
 * `sat,sun`) and before `utc`. `"02:00-04:00"`, `"mon-fri 22:00-02:00 utc"`.
 */
export function parseMaintenanceWindow(text: string): Result<MaintenanceWindow, Failure<'badWindow'>> {
  const bad = (why: string) =>
    err('badWindow', `maintenance window '${text.slice(0, 80)}': ${why} (e.g. "mon-fri 02:00-04:00 utc")`);
  const words = text.trim().toLowerCase().split(/\s+/);
  let zone: 'local' | 'utc' = 'local';
  if (words.at(-1) === 'utc' || words.at(-1) === 'local') zone = words.pop() as 'local' | 'utc';
  const times = words.pop();
  const m = times?.match(/^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/);
  if (!m) return bad('the hours are HH:MM-HH:MM');
  const [h1, m1, h2, m2] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
  if (h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || (h2 === 24 && m2 > 0)) return bad('no such time of day');
  const startMinute = h1 * 60 + m1;
  const endMinute = h2 * 60 + m2;
  const durationMinutes = endMinute > startMinute ? endMinute - startMinute : endMinute + 1440 - startMinute;
  let days: number[] | undefined;
  if (words.length > 1) return bad('one list of days, then the hours');
  if (words.length === 1) {
    days = [];
    for (const part of words[0]!.split(',')) {
      const range = part.split('-');
      const ix = range.map((n) => DAY_NAMES.indexOf(n.slice(0, 3)));
      if (range.length > 2 || ix.some((i) => i < 0)) return bad(`'${part}' is not a day or a range of days`);
      const [a, b = a] = ix as [number, number?];
      for (let d = a; ; d = (d + 1) % 7) {
        if (!days.includes(d)) days.push(d);
        if (d === b) break;
      }
    }
    days.sort((x, y) => x - y);
  }
  return ok({ startMinute, durationMinutes, ...(days ? { days } : {}), zone });
}

/** The window as an operator reads it (`mon-fri 02:00-04:00 utc`). */
export function formatMaintenanceWindow(w: MaintenanceWindow): string {
  const hhmm = (min: number) =>
    `${String(Math.floor(min / 60) % 24).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
  const days = w.days && w.days.length < 7 ? `${w.days.map((d) => DAY_NAMES[d]).join(',')} ` : '';
  const end = w.startMinute + w.durationMinutes;
  // A window to midnight reads 24:00, as written ("00:00-24:00"), not 00:00.
  const endText = end === 1440 ? '24:00' : hhmm(end);
  return `${days}${hhmm(w.startMinute)}-${endText}${w.zone === 'utc' ? ' utc' : ''}`;
}

/**
 * Whether the window is open at `now`, and if not, when it opens next (ms). A window opened
 * yesterday may still be open after midnight.
 */
export function maintenanceWindowAt(
  w: MaintenanceWindow,
  now: number,
): { readonly open: boolean; readonly opensAt: number | undefined } {
  const onDay = (day: number) => w.days === undefined || w.days.includes(day);
  const DAY = 24 * 60 * MINUTE;
  for (const back of [0, 1]) {
    const o = openingOn(w, now - back * DAY);
    if (onDay(o.day) && o.opens <= now && now < o.opens + w.durationMinutes * MINUTE)
      return { open: true, opensAt: undefined };
  }
  for (let ahead = 0; ahead <= 8; ahead++) {
    // Noon of the day ahead: daylight-saving shifts never move it to another calendar day.
    const today = openingOn(w, now);
    const o = openingOn(w, today.opens - w.startMinute * MINUTE + 12 * 60 * MINUTE + ahead * DAY);
    if (onDay(o.day) && o.opens > now) return { open: false, opensAt: o.opens };
  }
  return { open: false, opensAt: undefined }; // no day in the list
}
