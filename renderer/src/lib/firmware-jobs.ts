/**
 * Firmware update jobs for the fleet table and the device detail: `useFirmwareJobs` polls
 * `firmwareJobs` as the Firmware view does (every second while a job runs, every 3 s otherwise)
 * and keeps the running jobs in a Map by device id whose job objects stay the same while a job
 * does not move, so a memoized fleet row re-renders only when its own job advances.
 * `updateHistory` turns a device's `firmware.update` events (one per step of a job) and its live
 * job into one entry per job, newest first.
 *
 * @example
 * const { active } = useFirmwareJobs();
 * const job = active.get(row.id); // undefined: not being updated
 * const entries = updateHistory(events, job);
 */
import { useRef, useState } from 'react';
import type { EventView, FirmwareJobView, Json } from '../../../src/host/contract.js';
import { useClient } from '../store/use-live.js';
import { FINAL_STEPS } from '../views/FirmwareUpdates.js';
import { formatBytes } from './format.js';
import { usePolling } from './hooks.js';

/** Polling while a job runs, and while none does. */
export const ACTIVE_POLL_MS = 1_000;
export const IDLE_POLL_MS = 3_000;

const STEP_LABEL: Readonly<Record<string, string>> = {
  onTrial: 'on trial',
  rollingBack: 'rolling back',
  rolledBack: 'rolled back',
};

export function stepLabel(step: string): string {
  return STEP_LABEL[step] ?? step;
}

/** The transfer's progress, 0–100, floored (100 only when every byte is acknowledged). */
export function percentOf(job: { readonly offset: number; readonly size: number }): number {
  return job.size > 0 ? Math.floor(Math.min(1, job.offset / job.size) * 100) : 0;
}

/** The fleet row's mark: "updating 42 %", "on trial", "rebooting", … */
export function markText(job: FirmwareJobView): string {
  if (job.step === 'transferring') return `updating ${percentOf(job)} %`;
  return stepLabel(job.step);
}

/** The mark's tooltip: the version and the step (with the bytes while transferring). */
export function markTitle(job: FirmwareJobView): string {
  const bytes =
    job.step === 'transferring' ? ` (${formatBytes(job.offset)} of ${formatBytes(job.size)})` : '';
  return `Firmware update to ${job.version}: ${stepLabel(job.step)}${bytes}`;
}

const sameJob = (a: FirmwareJobView, b: FirmwareJobView) =>
  a.transferId === b.transferId &&
  a.step === b.step &&
  a.offset === b.offset &&
  a.deadline === b.deadline &&
  a.version === b.version &&
  (a.error?.code ?? null) === (b.error?.code ?? null);

/**
 * The running jobs by device id, reusing the previous Map (and its job objects) for whatever did
 * not change: the same Map back when nothing moved.
 */
export function activeJobs(
  jobs: readonly FirmwareJobView[],
  previous: ReadonlyMap<string, FirmwareJobView>,
): ReadonlyMap<string, FirmwareJobView> {
  const next = new Map<string, FirmwareJobView>();
  let changed = false;
  for (const j of jobs) {
    if (FINAL_STEPS.has(j.step)) continue;
    const before = previous.get(j.deviceId);
    if (before && sameJob(before, j)) next.set(j.deviceId, before);
    else {
      next.set(j.deviceId, j);
      changed = true;
    }
  }
  return changed || next.size !== previous.size ? next : previous;
}

export interface FirmwareJobs {
  /** Every device's current or last job; null before the first answer. */
  readonly jobs: readonly FirmwareJobView[] | null;
  /** Jobs in a non-final step, by device id. */
  readonly active: ReadonlyMap<string, FirmwareJobView>;
  readonly error: string | null;
}

const NONE: ReadonlyMap<string, FirmwareJobView> = new Map();

export function useFirmwareJobs(): FirmwareJobs {
  const client = useClient();
  const [state, setState] = useState<FirmwareJobs>({ jobs: null, active: NONE, error: null });
  const activeRef = useRef(NONE);
  usePolling(
    async (alive) => {
      let running = false;
      try {
        const r = await client.call('firmwareJobs', {});
        if (!alive()) return IDLE_POLL_MS;
        if (r.ok) {
          const active = activeJobs(r.value, activeRef.current);
          activeRef.current = active;
          running = active.size > 0;
          setState({ jobs: r.value, active, error: null });
        } else setState((s) => ({ ...s, error: `${r.error.code}: ${r.error.message}` }));
      } catch (error) {
        if (alive()) setState((s) => ({ ...s, error: String(error) }));
      }
      return running ? ACTIVE_POLL_MS : IDLE_POLL_MS;
    },
    [client],
  );
  return state;
}

/** One job in a device's history. */
export interface UpdateEntry {
  readonly key: string;
  readonly transferId: string;
  readonly version: string;
  /** The version the device ran before; null when unknown. */
  readonly from: string | null;
  readonly actor: string | null;
  /** Wall-clock ms; null when only the live job is known so far. */
  readonly startedAt: number | null;
  /** When it reached its final step; null while it runs. */
  readonly endedAt: number | null;
  readonly step: string;
  readonly offset: number;
  readonly size: number;
  readonly deadline: number | null;
  readonly error: { readonly step: string; readonly code: string; readonly message: string } | null;
  /** Not in a final step. */
  readonly running: boolean;
}

interface UpdateEventData {
  readonly step: string;
  readonly version: string;
  readonly transferId: string;
  readonly offset: number;
  readonly size: number;
  readonly actor?: string;
  readonly startedAt?: number;
  readonly from?: string | null;
  readonly error?: { readonly step: string; readonly code: string; readonly message: string };
}

function isObject(v: Json | undefined): v is { readonly [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function updateData(data: Json): UpdateEventData | null {
  if (!isObject(data)) return null;
  const { step, version, transferId, offset, size, actor, startedAt, from, error } = data;
  if (typeof step !== 'string' || typeof version !== 'string' || typeof transferId !== 'string') return null;
  return {
    step,
    version,
    transferId,
    offset: typeof offset === 'number' ? offset : 0,
    size: typeof size === 'number' ? size : 0,
    ...(typeof actor === 'string' ? { actor } : {}),
    ...(typeof startedAt === 'number' ? { startedAt } : {}),
    ...(typeof from === 'string' ? { from } : {}),
    ...(isObject(error) &&
    typeof error.step === 'string' &&
    typeof error.code === 'string' &&
    typeof error.message === 'string'
      ? { error: { step: error.step, code: error.code, message: error.message } }
      : {}),
  };
}

/**
 * A device's update history from its `firmware.update` events (any order, other kinds ignored)
 * and its current job: one entry per job, newest first, the live job's step and progress over
 * what the events said. Events carry the job's `startedAt`; older ones without it are told apart
 * by a job that starts again after its transfer id's last job ended.
 */
export function updateHistory(events: readonly EventView[], live?: FirmwareJobView): UpdateEntry[] {
  const sorted = events.filter((e) => e.kind === 'firmware.update').sort((a, b) => a.seq - b.seq);
  const entries: (UpdateEntry & { firstAt: number })[] = [];
  const open = new Map<string, number>();
  for (const e of sorted) {
    const d = updateData(e.data);
    if (!d) continue;
    const key = d.startedAt !== undefined ? `${d.transferId}@${d.startedAt}` : d.transferId;
    let index = open.get(key);
    const prior = index === undefined ? undefined : entries[index];
    if (prior === undefined || (!prior.running && !FINAL_STEPS.has(d.step))) {
      index = entries.length;
      open.set(key, index);
      entries.push({
        key: `${key}#${e.seq}`,
        transferId: d.transferId,
        version: d.version,
        from: null,
        actor: null,
        startedAt: d.startedAt ?? e.at,
        firstAt: e.at,
        endedAt: null,
        step: d.step,
        offset: 0,
        size: d.size,
        deadline: null,
        error: null,
        running: true,
      });
    }
    const entry = entries[index!]!;
    const final = FINAL_STEPS.has(d.step);
    entries[index!] = {
      ...entry,
      from: entry.from ?? d.from ?? null,
      actor: entry.actor ?? d.actor ?? null,
      step: d.step,
      offset: d.offset,
      size: d.size,
      error: d.error ?? (final ? entry.error : null),
      endedAt: final ? e.at : null,
      running: !final,
    };
  }
  if (live) {
    // The events' latest entry of the live job's transfer (a job seen running, or seen ending).
    let at = -1;
    for (let i = entries.length - 1; i >= 0; i--)
      if (entries[i]!.transferId === live.transferId) {
        at = i;
        break;
      }
    const liveRunning = !FINAL_STEPS.has(live.step);
    const target = at >= 0 ? entries[at]! : undefined;
    // A running live job not in the events yet (or newer than an ended entry of the same image).
    if (liveRunning && (target === undefined || !target.running))
      entries.push({
        key: `live:${live.transferId}`,
        transferId: live.transferId,
        version: live.version,
        from: null,
        actor: null,
        startedAt: null,
        firstAt: Number.MAX_SAFE_INTEGER,
        endedAt: null,
        step: live.step,
        offset: live.offset,
        size: live.size,
        deadline: live.deadline,
        error: live.error,
        running: true,
      });
    else if (target?.running)
      entries[at] = {
        ...target,
        step: live.step,
        offset: live.offset,
        size: live.size,
        deadline: live.deadline,
        error: live.error,
        running: liveRunning,
      };
  }
  return entries
    .sort(
      (a, b) =>
        Number(b.running) - Number(a.running) || (b.startedAt ?? b.firstAt) - (a.startedAt ?? a.firstAt),
    )
    .map(({ firstAt: _, ...entry }) => entry);
}
