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
 * The parts: the alarms kept and what happens to them (alarm-book.ts), what the fleet tells the
 * rules and each rule's scope (alarm-inputs.ts), the rules installed as handlers and the config
 * file (rule-handlers.ts), a rule's evaluation (evaluate.ts), the public types (alarm-types.ts,
 * re-exported here). This function wires them to the runtime: the manager, the tick, start and stop.
 *
 * @example
 * const alarms = createAlarmEngine({ runtime, fleet, store: await openSqliteAlarmStore({ file }) });
 * await alarms.start();
 * await alarms.setRule({ id: 'hot', type: 'threshold', metric: 'temp', op: 'above', value: 30, forMs: 2000 }, 'ops');
 * alarms.counts().unacked; // devices above 30 °C for 2 s
 */
import { ok } from '../lib/result.js';
import type { EventManagerProcess } from '../runtime/event-manager.js';
import { startEventManager } from '../runtime/event-manager.js';
import type { TimerRef } from '../runtime/timers.js';
import { createAlarmBook } from './alarm-book.js';
import { createAlarmInputs } from './alarm-inputs.js';
import type { AlarmEngine, AlarmEngineOptions } from './alarm-types.js';
import type { AlarmInput } from './evaluate.js';
import { compileRule } from './evaluate.js';
import { createRuleHandlers } from './rule-handlers.js';
import { parseRule } from './rules.js';

export type {
  AlarmCounts,
  AlarmEngine,
  AlarmEngineOptions,
  AlarmErrorCode,
  AlarmEvent,
  AlarmResult,
  RuleView,
} from './alarm-types.js';
export type { AlarmRecord } from './sqlite-alarm-store.js';

/** Builds the engine around the fleet and the alarm store; nothing runs until `start()`. */
export function createAlarmEngine(options: AlarmEngineOptions): AlarmEngine {
  const { runtime, fleet, store } = options;
  const clock = runtime.clock;
  const tickMs = options.tickMs ?? 1000;
  let manager: EventManagerProcess<AlarmInput> | undefined;
  let timer: TimerRef | undefined;
  let offs: (() => void)[] = [];

  const book = createAlarmBook({ runtime, store, audit: options.audit });
  const inputs = createAlarmInputs({ fleet, clock, notify: (input) => manager?.notify(input) });
  const handlers = createRuleHandlers({
    runtime,
    store,
    book,
    inputs,
    compile: options.compile ?? compileRule,
    manager: () => manager,
  });

  const onTick = () => {
    timer = undefined;
    inputs.rereadWatched();
    manager?.notify({ type: 'tick', atMs: clock.now() });
    timer = runtime.timers.schedule(tickMs, onTick, { label: 'alarms.tick' });
  };

  return {
    get manager() {
      return manager;
    },

    async start() {
      manager = startEventManager<AlarmInput>(runtime, { name: 'alarms' });
      const lastId = await store.maxAlarmId();
      book.load(lastId, await store.openAlarms());
      inputs.seed();
      await handlers.loadAll(options.configFile);
      offs = inputs.subscribe();
      timer = runtime.timers.schedule(tickMs, onTick, { label: 'alarms.tick' });
    },

    async stop() {
      for (const off of offs.splice(0)) off();
      if (timer) runtime.timers.cancel(timer);
      timer = undefined;
      await manager?.stop();
      await book.written();
    },

    rules: () => handlers.views(),

    async setRule(input, actor) {
      const parsed = parseRule(input);
      if (!parsed.ok) return parsed;
      return ok(await handlers.save(parsed.value, actor));
    },

    deleteRule: (id, actor) => handlers.remove(id, actor),

    async list(filter) {
      await book.written();
      return store.listAlarms(filter, clock.wallNow());
    },

    ack: (id, actor) => book.ack(id, actor),
    shelve: (id, forMs, actor) => book.shelve(id, forMs, actor),
    counts: () => book.counts(),
    listen: (listener) => book.listen(listener),

    async settle() {
      await manager?.syncNotify({ type: 'tick', atMs: clock.now() });
      await book.written();
    },
  };
}
