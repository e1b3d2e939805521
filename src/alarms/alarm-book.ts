/**
 * The alarms the engine keeps (alarm-engine.ts): the open ones in memory, at most one per rule and
 * device; every change written to the alarm store and told to the audit hook and the listeners;
 * acknowledging, shelving and the counts the navigation shows.
 *
 * Shelving is remembered per rule and device until its time, so an alarm that clears and comes
 * back meanwhile comes back shelved.
 *
 * @example
 * const book = createAlarmBook({ runtime, store });
 * book.apply(rule, { type: 'raise', ruleId: 'hot', deviceId: 'd1', atMs, value: 31, message: 'temp above 30: 31' });
 * book.counts(); // { active: 1, unacked: 1, shelved: 0, bySeverity: { major: 1, … } }
 */
import type { JsonObject } from '../lib/json.js';
import { err, ok } from '../lib/result.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AlarmCounts, AlarmEvent, AlarmResult } from './alarm-types.js';
import type { AlarmChange } from './evaluate.js';
import type { AlarmRule } from './rules.js';
import { SEVERITIES } from './rules.js';
import type { AlarmRecord, SqliteAlarmStore } from './sqlite-alarm-store.js';

export type AlarmListener = (alarm: AlarmRecord, event: AlarmEvent) => void;

export interface AlarmBookOptions {
  readonly runtime: Runtime;
  readonly store: SqliteAlarmStore;
  /** Each change of an alarm for the device's event log (see AlarmEngineOptions.audit). */
  readonly audit?: (kind: string, deviceId: string, data: JsonObject) => void;
}

export interface AlarmBook {
  /** Takes the open alarms and the last id from the store (at start). */
  load(lastId: number, open: readonly AlarmRecord[]): void;
  /** What a rule raised or cleared, as alarms. Runs inside the rule's handler. */
  apply(rule: AlarmRule, change: AlarmChange): void;
  /** Each open alarm of the rule is kept if `keep` says so, else cleared by `by`. */
  sweepRule(ruleId: string, keep: (alarm: AlarmRecord) => boolean, by: string): void;
  /** Clears every open alarm of the rule, by `by`. */
  clearRule(ruleId: string, by: string): void;
  /** The open alarms now (a copy). */
  openAlarms(): AlarmRecord[];
  /** How many alarms of the rule are open. */
  activeOf(ruleId: string): number;
  ack(id: number, actor: string): Promise<AlarmResult<AlarmRecord>>;
  shelve(id: number, forMs: number, actor: string): Promise<AlarmResult<AlarmRecord>>;
  counts(): AlarmCounts;
  listen(listener: AlarmListener): () => void;
  /** Resolves when the last write so far is done. */
  written(): Promise<unknown>;
}

const keyOf = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;

function auditData(a: AlarmRecord, e: AlarmEvent): JsonObject {
  const base = { id: a.id, ruleId: a.ruleId, severity: a.severity, message: a.message };
  switch (e) {
    case 'raised':
      return base;
    case 'acked':
      return { ...base, by: a.ackedBy };
    case 'shelved':
      return { ...base, by: a.shelvedBy, until: a.shelvedUntil };
    case 'cleared':
      return { ...base, by: a.clearedBy };
  }
}

/** A new alarm for a rule's raise; shelved if its rule and device are shelved past `at`. */
function raisedAlarm(
  id: number,
  rule: AlarmRule,
  c: AlarmChange,
  at: number,
  shelved: { until: number; by: string } | undefined,
): AlarmRecord {
  return {
    id,
    ruleId: c.ruleId,
    deviceId: c.deviceId,
    severity: rule.severity,
    message: c.message,
    value: c.value,
    raisedAt: at,
    ackedAt: null,
    ackedBy: null,
    clearedAt: null,
    clearedBy: null,
    shelvedUntil: shelved && shelved.until > at ? shelved.until : null,
    shelvedBy: shelved && shelved.until > at ? shelved.by : null,
  };
}

/** The counts of the open alarms at `now` (wall ms): a shelved alarm is not counted as unacked. */
export function countAlarms(open: Iterable<AlarmRecord>, now: number): AlarmCounts {
  let active = 0;
  let unacked = 0;
  let shelved = 0;
  const bySeverity: Record<string, number> = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
  for (const a of open) {
    active++;
    if (a.shelvedUntil !== null && a.shelvedUntil > now) shelved++;
    else if (a.ackedAt === null) {
      unacked++;
      bySeverity[a.severity] = (bySeverity[a.severity] ?? 0) + 1;
    }
  }
  return { active, unacked, shelved, bySeverity };
}

export function createAlarmBook(options: AlarmBookOptions): AlarmBook {
  const { runtime, store } = options;
  const clock = runtime.clock;
  const open = new Map<string, AlarmRecord>();
  const shelf = new Map<string, { until: number; by: string }>();
  const listeners = new Set<AlarmListener>();
  let lastId = 0;
  let writes: Promise<unknown> = Promise.resolve();

  const write = (a: AlarmRecord) => {
    writes = store.putAlarm(a).catch((error: unknown) => runtime.report(`alarm ${a.id} not saved`, error));
  };
  const tell = (a: AlarmRecord, e: AlarmEvent) => {
    if (options.audit)
      try {
        options.audit(`alarm.${e}`, a.deviceId, auditData(a, e));
      } catch (error) {
        runtime.report('writing an alarm to the event log failed', error);
      }
    for (const l of listeners)
      try {
        l(a, e);
      } catch (error) {
        runtime.report('an alarm listener threw', error);
      }
  };
  const record = (a: AlarmRecord, e: AlarmEvent) => {
    write(a);
    tell(a, e);
  };

  const sweepRule = (ruleId: string, keep: (a: AlarmRecord) => boolean, by: string) => {
    const at = clock.wallNow();
    for (const [key, a] of open)
      if (a.ruleId === ruleId && !keep(a)) {
        open.delete(key);
        record({ ...a, clearedAt: at, clearedBy: by }, 'cleared');
      }
  };

  const openById = (id: number) => [...open.values()].find((a) => a.id === id);

  return {
    load(maxId, alarms) {
      lastId = maxId;
      for (const a of alarms) {
        open.set(keyOf(a.ruleId, a.deviceId), a);
        if (a.shelvedUntil !== null && a.shelvedBy !== null)
          shelf.set(keyOf(a.ruleId, a.deviceId), { until: a.shelvedUntil, by: a.shelvedBy });
      }
    },

    apply(rule, c) {
      const key = keyOf(c.ruleId, c.deviceId);
      const at = clock.wallNow();
      if (c.type === 'raise') {
        if (open.has(key)) return;
        const a = raisedAlarm(++lastId, rule, c, at, shelf.get(key));
        open.set(key, a);
        record(a, 'raised');
        return;
      }
      const a = open.get(key);
      if (!a) return;
      open.delete(key);
      record({ ...a, clearedAt: at, clearedBy: 'system' }, 'cleared');
    },

    sweepRule,
    clearRule: (ruleId, by) => sweepRule(ruleId, () => false, by),
    openAlarms: () => [...open.values()],

    activeOf(ruleId) {
      let active = 0;
      for (const a of open.values()) if (a.ruleId === ruleId) active++;
      return active;
    },

    async ack(id, actor) {
      const current = openById(id);
      // A cleared alarm can still be acknowledged: it is read back once the writes so far are done.
      if (!current) await writes;
      const a = current ?? (await store.getAlarm(id));
      if (!a) return err('notFound', `no alarm ${id}`);
      if (a.ackedAt !== null) return ok(a);
      const acked = { ...a, ackedAt: clock.wallNow(), ackedBy: actor };
      if (current) open.set(keyOf(acked.ruleId, acked.deviceId), acked);
      record(acked, 'acked');
      return ok(acked);
    },

    async shelve(id, forMs, actor) {
      const current = openById(id);
      if (!current) {
        await writes;
        return (await store.getAlarm(id))
          ? err('notActive', `alarm ${id} is cleared; only an open alarm can be shelved`)
          : err('notFound', `no alarm ${id}`);
      }
      const key = keyOf(current.ruleId, current.deviceId);
      const until = forMs > 0 ? clock.wallNow() + forMs : null;
      if (until === null) shelf.delete(key);
      else shelf.set(key, { until, by: actor });
      const shelved = { ...current, shelvedUntil: until, shelvedBy: until === null ? null : actor };
      open.set(key, shelved);
      record(shelved, 'shelved');
      return ok(shelved);
    },

    counts: () => countAlarms(open.values(), clock.wallNow()),

    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    written: () => writes,
  };
}
