/**
 * The alarm engine: every rule is a handler of one event manager (`alarms`, gen_event), fed from
 * the fleet — each telemetry batch, each lifecycle entry of the device event log and each change
 * of a command circuit breaker (as the device's facts: online, crash loop, drift, stuck, circuit
 * open) — and a tick on the runtime clock for durations. A rule
 * that throws is removed by the manager and reported (`handler.removed` on the runtime's event
 * stream, and the reporter's log); the rule shows `crashed` with the error, the fleet and the
 * other rules run on, and saving the rule again installs it again.
 *
 * What a rule raises or clears becomes an alarm: kept in memory while open (at most one per rule
 * and device) and written to the alarm store, with who acknowledged, shelved and cleared it, and
 * when. Shelving hides an alarm from the counts and notifications until a time, and carries over
 * to the same rule and device if it clears and comes back meanwhile.
 *
 * @example
 * const alarms = createAlarmEngine({ runtime, fleet, store: await openSqliteAlarmStore({ file }) });
 * await alarms.start();
 * await alarms.setRule({ id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30, forMs: 2000 }, 'ops');
 * alarms.counts().unacked; // devices above 30 °C for 2 s
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Fleet, FleetEvent } from '../devices/fleet.js';
import type { JsonObject } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';
import { err, ok } from '../lib/result.js';
import type { EventManagerProcess } from '../runtime/event-manager.js';
import { startEventManager } from '../runtime/event-manager.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { AlarmChange, AlarmInput, CompiledRule, DeviceFacts } from './evaluate.js';
import { compileRule } from './evaluate.js';
import type { AlarmRule } from './rules.js';
import { describeRule, parseRule, SEVERITIES } from './rules.js';
import type { AlarmFilter, AlarmRecord, SqliteAlarmStore } from './sqlite-alarm-store.js';

export type { AlarmRecord } from './sqlite-alarm-store.js';

/** `badRule` (the message names the field), `notFound`, `notActive` (shelving a cleared alarm). */
export type AlarmErrorCode = 'badRule' | 'notFound' | 'notActive';
export type AlarmResult<T> = Result<T, Failure<AlarmErrorCode>>;

export interface RuleView {
  readonly rule: AlarmRule;
  readonly description: string;
  /** `crashed`: it threw and was removed; saving it again installs it again. */
  readonly status: 'running' | 'disabled' | 'crashed';
  readonly error: string | null;
  readonly updatedBy: string;
  readonly updatedAt: number;
  /** Its alarms open now. */
  readonly active: number;
}

export interface AlarmCounts {
  /** Open (not cleared). */
  readonly active: number;
  /** Open, not acknowledged and not shelved: what the navigation shows. */
  readonly unacked: number;
  readonly shelved: number;
  /** Of `unacked`, per severity. */
  readonly bySeverity: Readonly<Record<string, number>>;
}

export type AlarmEvent = 'raised' | 'cleared' | 'acked' | 'shelved';

export interface AlarmEngine {
  start(): Promise<void>;
  stop(): Promise<void>;
  rules(): RuleView[];
  /** Validates and saves a rule (new or replacing the one with its id), and installs it. */
  setRule(input: unknown, actor: string): Promise<AlarmResult<RuleView>>;
  /** Removes a rule; its open alarms clear, by the actor. */
  deleteRule(id: string, actor: string): Promise<AlarmResult<{ readonly deleted: string }>>;
  list(filter: AlarmFilter): Promise<AlarmRecord[]>;
  ack(id: number, actor: string): Promise<AlarmResult<AlarmRecord>>;
  /** Shelves an open alarm for `forMs` (0 unshelves it). */
  shelve(id: number, forMs: number, actor: string): Promise<AlarmResult<AlarmRecord>>;
  counts(): AlarmCounts;
  /** Every change of an alarm; the returned function stops it. */
  listen(listener: (alarm: AlarmRecord, event: AlarmEvent) => void): () => void;
  /** The event manager (its handlers are `rule:<id>`), for the tree and tests. */
  readonly manager: EventManagerProcess<AlarmInput> | undefined;
  /** Resolves when every input queued so far has reached every rule, and its writes are done. */
  settle(): Promise<void>;
}

export interface AlarmEngineOptions {
  readonly runtime: Runtime;
  readonly fleet: Fleet;
  readonly store: SqliteAlarmStore;
  /** How often durations are checked; default 1000 ms. */
  readonly tickMs?: number;
  /** Rules to load at start (`alarm-rules.json` in the data folder): a JSON array, each validated. */
  readonly configFile?: string;
  /** For tests: how a rule becomes its evaluator. */
  readonly compile?: typeof compileRule;
  /**
   * Each change of an alarm for the device's event log (`alarm.raised`, `alarm.acked`,
   * `alarm.shelved`, `alarm.cleared`, with who), so its history shows it.
   */
  readonly audit?: (kind: string, deviceId: string, data: JsonObject) => void;
}

const FACT_EVENTS = new Set([
  'device.offline',
  'device.online',
  'device.failed',
  'device.restarted',
  'device.drift',
  'device.stuck',
  'device.state',
  'device.added',
  'device.spec',
  'device.updated',
  'device.edited',
]);

const keyOf = (ruleId: string, deviceId: string) => `${ruleId}\u0000${deviceId}`;

export function createAlarmEngine(options: AlarmEngineOptions): AlarmEngine {
  const { runtime, fleet, store } = options;
  const clock = runtime.clock;
  const compile = options.compile ?? compileRule;
  const tickMs = options.tickMs ?? 1000;

  interface Installed {
    rule: AlarmRule;
    updatedBy: string;
    updatedAt: number;
    crashed: string | null;
    compiled: CompiledRule | undefined;
  }
  const rules = new Map<string, Installed>();
  const open = new Map<string, AlarmRecord>();
  const shelf = new Map<string, { until: number; by: string }>();
  const listeners = new Set<(a: AlarmRecord, e: AlarmEvent) => void>();
  const meta = new Map<string, { kind: string; tags: readonly string[] } | null>();
  /** Devices with drift or stuck: their facts are read again on each tick (the fleet logs only the start). */
  const watched = new Set<string>();
  const lastFacts = new Map<string, DeviceFacts>();
  let manager: EventManagerProcess<AlarmInput> | undefined;
  let lastId = 0;
  let timer: TimerRef | undefined;
  let offs: (() => void)[] = [];
  let writes: Promise<unknown> = Promise.resolve();

  const write = (a: AlarmRecord) => {
    writes = store.putAlarm(a).catch((error: unknown) => runtime.report(`alarm ${a.id} not saved`, error));
  };
  const auditData = (a: AlarmRecord, e: AlarmEvent): JsonObject => {
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

  const metaOf = (id: string) => {
    let m = meta.get(id);
    if (m === undefined) {
      const d = fleet.device(id);
      m = d ? { kind: d.kind, tags: d.tags } : null;
      meta.set(id, m);
    }
    return m;
  };
  const scopeOf = (rule: AlarmRule) => {
    const s = rule.scope;
    if (!s) return () => true;
    const ids = s.deviceIds ? new Set(s.deviceIds) : undefined;
    return (id: string) => {
      if (ids && !ids.has(id)) return false;
      if (s.kind === undefined && s.tag === undefined) return true;
      const m = metaOf(id);
      if (!m) return false;
      return (s.kind === undefined || m.kind === s.kind) && (s.tag === undefined || m.tags.includes(s.tag));
    };
  };

  const factsOf = (id: string): DeviceFacts | undefined => {
    const d = fleet.device(id);
    if (!d) return undefined;
    return {
      online: d.link.up,
      crashLoop: d.failure?.code === 'crashLoop',
      drift: d.drift.length > 0,
      stuck: d.stuck !== undefined,
      circuitOpen: fleet.guards.breakerState(id) !== 'closed',
    };
  };
  const sameFacts = (a: DeviceFacts | undefined, b: DeviceFacts) =>
    a !== undefined &&
    a.online === b.online &&
    a.crashLoop === b.crashLoop &&
    a.drift === b.drift &&
    a.stuck === b.stuck &&
    a.circuitOpen === b.circuitOpen;
  const postFacts = (id: string, force: boolean) => {
    const f = factsOf(id);
    if (!f) return;
    if (f.drift || f.stuck) watched.add(id);
    else watched.delete(id);
    if (!force && sameFacts(lastFacts.get(id), f)) return;
    lastFacts.set(id, f);
    manager?.notify({ type: 'facts', deviceId: id, atMs: clock.now(), facts: f });
  };

  /** What a rule raised or cleared, as alarms. Runs inside the rule's handler. */
  const apply = (rule: AlarmRule, c: AlarmChange) => {
    const key = keyOf(c.ruleId, c.deviceId);
    const at = clock.wallNow();
    if (c.type === 'raise') {
      if (open.has(key)) return;
      const shelved = shelf.get(key);
      const a: AlarmRecord = {
        id: ++lastId,
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
      open.set(key, a);
      write(a);
      tell(a, 'raised');
    } else {
      const a = open.get(key);
      if (!a) return;
      open.delete(key);
      const cleared = { ...a, clearedAt: at, clearedBy: 'system' };
      write(cleared);
      tell(cleared, 'cleared');
    }
  };

  const clearRuleAlarms = (ruleId: string, by: string) => {
    const at = clock.wallNow();
    for (const [key, a] of open)
      if (a.ruleId === ruleId) {
        open.delete(key);
        const cleared = { ...a, clearedAt: at, clearedBy: by };
        write(cleared);
        tell(cleared, 'cleared');
      }
  };

  async function install(entry: Installed): Promise<void> {
    const m = manager;
    if (!m) return;
    const handlerId = `rule:${entry.rule.id}`;
    await m.removeHandler(handlerId);
    entry.compiled = undefined;
    entry.crashed = null;
    if (!entry.rule.enabled) return;
    const rule = entry.rule;
    const applies = scopeOf(rule);
    const compiled = compile(rule, applies);
    const now = clock.now();
    const at = clock.wallNow();
    for (const [key, a] of open)
      if (a.ruleId === rule.id) {
        if (applies(a.deviceId)) compiled.restoreActive(a.deviceId, now);
        else {
          // Out of the rule's (new) scope: nothing would ever clear it.
          open.delete(key);
          const cleared = { ...a, clearedAt: at, clearedBy: `rule changed by ${entry.updatedBy}` };
          write(cleared);
          tell(cleared, 'cleared');
        }
      }
    const emit = (c: AlarmChange) => apply(rule, c);
    const added = await m.addHandler<CompiledRule>(handlerId, {
      init: () => compiled,
      handleEvent(input, state) {
        state.handle(input, emit);
        return state;
      },
      terminate(reason) {
        if (reason.type !== 'error' || rules.get(rule.id) !== entry) return;
        entry.crashed = reason.error.message;
        entry.compiled = undefined;
      },
    });
    if (!added.ok) {
      entry.crashed = added.error.message;
      return;
    }
    entry.compiled = compiled;
    // Its first facts: every device as it is now.
    for (const [id, f] of lastFacts) m.notify({ type: 'facts', deviceId: id, atMs: clock.now(), facts: f });
  }

  const viewOf = (entry: Installed): RuleView => {
    let active = 0;
    for (const a of open.values()) if (a.ruleId === entry.rule.id) active++;
    return {
      rule: entry.rule,
      description: describeRule(entry.rule),
      status: entry.crashed !== null ? 'crashed' : entry.rule.enabled ? 'running' : 'disabled',
      error: entry.crashed,
      updatedBy: entry.updatedBy,
      updatedAt: entry.updatedAt,
      active,
    };
  };

  async function saveRule(rule: AlarmRule, actor: string): Promise<Installed> {
    const at = clock.wallNow();
    await store.putRule(rule, actor, at);
    const previous = rules.get(rule.id);
    const entry: Installed = { rule, updatedBy: actor, updatedAt: at, crashed: null, compiled: undefined };
    rules.set(rule.id, entry);
    if (previous && (!rule.enabled || previous.rule.type !== rule.type))
      clearRuleAlarms(rule.id, `rule changed by ${actor}`);
    await install(entry);
    return entry;
  }

  function loadConfig(file: string): AlarmRule[] {
    if (!existsSync(file)) return [];
    let list: unknown;
    try {
      list = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      runtime.logger.error(`alarm rules in ${file} not loaded: not JSON (${(error as Error).message})`);
      return [];
    }
    if (!Array.isArray(list)) {
      runtime.logger.error(`alarm rules in ${file} not loaded: expected a JSON array of rules`);
      return [];
    }
    const out: AlarmRule[] = [];
    list.forEach((item, i) => {
      const r = parseRule(item);
      if (r.ok) out.push(r.value);
      else runtime.logger.error(`alarm rule [${i}] in ${file} skipped: ${r.error.message}`);
    });
    return out;
  }

  const onTick = () => {
    timer = undefined;
    for (const id of [...watched]) postFacts(id, false);
    manager?.notify({ type: 'tick', atMs: clock.now() });
    timer = runtime.timers.schedule(tickMs, onTick, { label: 'alarms.tick' });
  };

  const onFleetEvent = (e: FleetEvent) => {
    const id = e.deviceId;
    if (id === undefined) return;
    if (e.kind === 'device.removed') {
      meta.delete(id);
      lastFacts.delete(id);
      watched.delete(id);
      manager?.notify({ type: 'removed', deviceId: id, atMs: clock.now() });
      return;
    }
    if (!FACT_EVENTS.has(e.kind)) return;
    if (e.kind === 'device.added' || e.kind === 'device.updated' || e.kind === 'device.edited')
      meta.delete(id);
    postFacts(id, false);
  };

  return {
    get manager() {
      return manager;
    },

    async start() {
      manager = startEventManager<AlarmInput>(runtime, { name: 'alarms' });
      lastId = await store.maxAlarmId();
      for (const a of await store.openAlarms()) {
        open.set(keyOf(a.ruleId, a.deviceId), a);
        if (a.shelvedUntil !== null && a.shelvedBy !== null)
          shelf.set(keyOf(a.ruleId, a.deviceId), { until: a.shelvedUntil, by: a.shelvedBy });
      }
      for (const d of fleet.list()) {
        const f = factsOf(d.id);
        if (f) {
          lastFacts.set(d.id, f);
          if (f.drift || f.stuck) watched.add(d.id);
        }
      }
      for (const s of await store.listRules()) {
        if (!s.rule) {
          runtime.logger.error(`alarm rule ${s.id} in the database is not valid and is not run: ${s.error}`);
          continue;
        }
        const entry: Installed = {
          rule: s.rule,
          updatedBy: s.updatedBy,
          updatedAt: s.updatedAt,
          crashed: null,
          compiled: undefined,
        };
        rules.set(s.rule.id, entry);
        await install(entry);
      }
      if (options.configFile)
        for (const rule of loadConfig(options.configFile)) {
          const same = rules.get(rule.id);
          if (same && JSON.stringify(same.rule) === JSON.stringify(rule)) continue;
          await saveRule(rule, 'config');
        }
      // Open alarms whose rule is gone (deleted while the app was down) clear.
      for (const a of [...open.values()]) if (!rules.has(a.ruleId)) clearRuleAlarms(a.ruleId, 'rule deleted');
      offs = [
        fleet.observe((activity) => {
          if (activity.type === 'telemetry')
            manager?.notify({
              type: 'telemetry',
              deviceId: activity.deviceId,
              atMs: clock.now(),
              values: activity.values,
            });
        }),
        fleet.watchEvents(onFleetEvent),
        fleet.guards.listen((id) => postFacts(id, false)),
      ];
      timer = runtime.timers.schedule(tickMs, onTick, { label: 'alarms.tick' });
    },

    async stop() {
      for (const off of offs.splice(0)) off();
      if (timer) runtime.timers.cancel(timer);
      timer = undefined;
      await manager?.stop();
      await writes;
    },

    rules: () => [...rules.values()].map(viewOf),

    async setRule(input, actor) {
      const parsed = parseRule(input);
      if (!parsed.ok) return parsed;
      return ok(viewOf(await saveRule(parsed.value, actor)));
    },

    async deleteRule(id, actor) {
      const entry = rules.get(id);
      if (!entry) return err('notFound', `no alarm rule '${id}'`);
      rules.delete(id);
      await manager?.removeHandler(`rule:${id}`);
      await store.deleteRule(id);
      clearRuleAlarms(id, `rule deleted by ${actor}`);
      return ok({ deleted: id });
    },

    async list(filter) {
      await writes;
      return store.listAlarms(filter, clock.wallNow());
    },

    async ack(id, actor) {
      const current = [...open.values()].find((a) => a.id === id);
      if (current) {
        if (current.ackedAt !== null) return ok(current);
        const acked = { ...current, ackedAt: clock.wallNow(), ackedBy: actor };
        open.set(keyOf(acked.ruleId, acked.deviceId), acked);
        write(acked);
        tell(acked, 'acked');
        return ok(acked);
      }
      await writes;
      const stored = await store.getAlarm(id);
      if (!stored) return err('notFound', `no alarm ${id}`);
      if (stored.ackedAt !== null) return ok(stored);
      const acked = { ...stored, ackedAt: clock.wallNow(), ackedBy: actor };
      write(acked);
      tell(acked, 'acked');
      return ok(acked);
    },

    async shelve(id, forMs, actor) {
      const current = [...open.values()].find((a) => a.id === id);
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
      write(shelved);
      tell(shelved, 'shelved');
      return ok(shelved);
    },

    counts() {
      const now = clock.wallNow();
      let unacked = 0;
      let shelved = 0;
      const bySeverity: Record<string, number> = Object.fromEntries(SEVERITIES.map((s) => [s, 0]));
      for (const a of open.values()) {
        if (a.shelvedUntil !== null && a.shelvedUntil > now) shelved++;
        else if (a.ackedAt === null) {
          unacked++;
          bySeverity[a.severity] = (bySeverity[a.severity] ?? 0) + 1;
        }
      }
      return { active: open.size, unacked, shelved, bySeverity };
    },

    listen(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async settle() {
      await manager?.syncNotify({ type: 'tick', atMs: clock.now() });
      await writes;
    },
  };
}
