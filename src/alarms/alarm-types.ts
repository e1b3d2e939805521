/**
 * The alarm engine's public vocabulary (alarm-engine.ts): the engine's interface and options, a
 * rule as the UI sees it, the counts and the changes an alarm goes through. Types only;
 * alarm-engine.ts re-exports them, so importers keep importing from there.
 *
 * @example
 * import type { AlarmEngine, RuleView } from './alarm-engine.js';
 * const views: RuleView[] = engine.rules(); // [{ rule, description: 'temp above 30 for 2 s', status: 'running', … }]
 */
import type { Fleet } from '../devices/fleet.js';
import type { JsonObject } from '../lib/json.js';
import type { Failure, Result } from '../lib/result.js';
import type { EventManagerProcess } from '../runtime/event-manager.js';
import type { Runtime } from '../runtime/runtime.js';
import type { AlarmInput, compileRule } from './evaluate.js';
import type { AlarmRule } from './rules.js';
import type { AlarmFilter, AlarmRecord, SqliteAlarmStore } from './sqlite-alarm-store.js';

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
