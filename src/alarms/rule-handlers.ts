/**
 * The alarm rules installed (alarm-engine.ts): each enabled rule is a handler `rule:<id>` of the
 * alarm event manager, compiled with its scope. Loaded from the alarm store and the config file at
 * start, saved and deleted by the API; a rule that throws is removed by the manager and shows
 * `crashed` until it is saved again.
 *
 * Installing a rule again keeps its open alarms (its evaluator is told they are up), except those
 * of devices its new scope leaves out, which nothing would ever clear: they clear now.
 *
 * @example
 * const handlers = createRuleHandlers({ runtime, store, book, inputs, compile: compileRule, manager: () => m });
 * await handlers.loadAll('/data/alarm-rules.json');
 * handlers.views(); // [{ rule, description: 'temp above 30 for 2 s', status: 'running', active: 0, … }]
 */
import { existsSync, readFileSync } from 'node:fs';
import { err, ok } from '../lib/result.js';
import type { EventManagerProcess } from '../runtime/event-manager.js';
import type { Logger, Runtime } from '../runtime/runtime.js';
import type { AlarmBook } from './alarm-book.js';
import type { AlarmInputs } from './alarm-inputs.js';
import type { AlarmResult, RuleView } from './alarm-types.js';
import type { AlarmChange, AlarmInput, CompiledRule, compileRule } from './evaluate.js';
import type { AlarmRule } from './rules.js';
import { describeRule, parseRule } from './rules.js';
import type { SqliteAlarmStore } from './sqlite-alarm-store.js';

export interface RuleHandlersOptions {
  readonly runtime: Runtime;
  readonly store: SqliteAlarmStore;
  readonly book: AlarmBook;
  readonly inputs: AlarmInputs;
  readonly compile: typeof compileRule;
  /** The alarm event manager, once started. */
  readonly manager: () => EventManagerProcess<AlarmInput> | undefined;
}

export interface RuleHandlers {
  /** The rules in the store, then those of `configFile` that differ; open alarms of rules gone clear. */
  loadAll(configFile: string | undefined): Promise<void>;
  views(): RuleView[];
  /** Saves a valid rule (new or replacing the one with its id) and installs it. */
  save(rule: AlarmRule, actor: string): Promise<RuleView>;
  remove(id: string, actor: string): Promise<AlarmResult<{ readonly deleted: string }>>;
}

interface Installed {
  rule: AlarmRule;
  updatedBy: string;
  updatedAt: number;
  crashed: string | null;
  compiled: CompiledRule | undefined;
}

/** The rules of `alarm-rules.json`: a JSON array, each validated; what is not valid is logged and skipped. */
export function loadRuleConfig(file: string, logger: Logger): AlarmRule[] {
  if (!existsSync(file)) return [];
  let list: unknown;
  try {
    list = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    logger.error(`alarm rules in ${file} not loaded: not JSON (${(error as Error).message})`);
    return [];
  }
  if (!Array.isArray(list)) {
    logger.error(`alarm rules in ${file} not loaded: expected a JSON array of rules`);
    return [];
  }
  const out: AlarmRule[] = [];
  list.forEach((item, i) => {
    const r = parseRule(item);
    if (r.ok) out.push(r.value);
    else logger.error(`alarm rule [${i}] in ${file} skipped: ${r.error.message}`);
  });
  return out;
}

export function createRuleHandlers(options: RuleHandlersOptions): RuleHandlers {
  const { runtime, store, book, inputs, compile } = options;
  const clock = runtime.clock;
  const rules = new Map<string, Installed>();

  async function install(entry: Installed): Promise<void> {
    const m = options.manager();
    if (!m) return;
    const handlerId = `rule:${entry.rule.id}`;
    await m.removeHandler(handlerId);
    entry.compiled = undefined;
    entry.crashed = null;
    if (!entry.rule.enabled) return;
    const rule = entry.rule;
    const applies = inputs.scopeOf(rule);
    const compiled = compile(rule, applies);
    const now = clock.now();
    book.sweepRule(
      rule.id,
      (a) => {
        if (!applies(a.deviceId)) return false;
        compiled.restoreActive(a.deviceId, now);
        return true;
      },
      `rule changed by ${entry.updatedBy}`,
    );
    const emit = (c: AlarmChange) => book.apply(rule, c);
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
    for (const [id, f] of inputs.facts())
      m.notify({ type: 'facts', deviceId: id, atMs: clock.now(), facts: f });
  }

  const viewOf = (entry: Installed): RuleView => ({
    rule: entry.rule,
    description: describeRule(entry.rule),
    status: entry.crashed !== null ? 'crashed' : entry.rule.enabled ? 'running' : 'disabled',
    error: entry.crashed,
    updatedBy: entry.updatedBy,
    updatedAt: entry.updatedAt,
    active: book.activeOf(entry.rule.id),
  });

  async function saveRule(rule: AlarmRule, actor: string): Promise<Installed> {
    const at = clock.wallNow();
    await store.putRule(rule, actor, at);
    const previous = rules.get(rule.id);
    const entry: Installed = { rule, updatedBy: actor, updatedAt: at, crashed: null, compiled: undefined };
    rules.set(rule.id, entry);
    if (previous && (!rule.enabled || previous.rule.type !== rule.type))
      book.clearRule(rule.id, `rule changed by ${actor}`);
    await install(entry);
    return entry;
  }

  return {
    async loadAll(configFile) {
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
      if (configFile)
        for (const rule of loadRuleConfig(configFile, runtime.logger)) {
          const same = rules.get(rule.id);
          if (same && JSON.stringify(same.rule) === JSON.stringify(rule)) continue;
          await saveRule(rule, 'config');
        }
      // Open alarms whose rule is gone (deleted while the app was down) clear.
      for (const a of book.openAlarms()) if (!rules.has(a.ruleId)) book.clearRule(a.ruleId, 'rule deleted');
    },

    views: () => [...rules.values()].map(viewOf),

    save: async (rule, actor) => viewOf(await saveRule(rule, actor)),

    async remove(id, actor) {
      const entry = rules.get(id);
      if (!entry) return err('notFound', `no alarm rule '${id}'`);
      rules.delete(id);
      await options.manager()?.removeHandler(`rule:${id}`);
      await store.deleteRule(id);
      book.clearRule(id, `rule deleted by ${actor}`);
      return ok({ deleted: id });
    },
  };
}
