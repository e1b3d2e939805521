/**
 * Sparkplug metrics as a birth defines them: the table a node's or device's later messages are
 * read against (by name or by alias), the status's metric list, and what the values of one message
 * become (telemetry, the values shown in the status, the writes they confirm).
 *
 * @example
 * const table = birthTable('DBIRTH', birth.metrics, (code, message) => bad(id, code, message));
 * resolveMetric(table, { alias: 5, … }, 'DDATA', bad); // { name: 'temperature', datatype: 'Float', alias: 5 }
 */
import type { JsonValue } from '../../store/store.js';
import type { Datatype, SparkplugMetric, SparkplugPayload } from './sparkplug-codec.js';
import { BDSEQ_METRIC, scalarJson, telemetryValue, valueAs } from './sparkplug-codec.js';
import type { SparkplugEffect } from './sparkplug-effects.js';

/** Telemetry is not made of these (they are control, not measurements). */
const CONTROL_PREFIXES = ['Node Control/', 'Device Control/'];
const FIRMWARE_NAME = /(^|\/)((firmware|fw)([ _]?version)?|(software|sw)[ _]?version)$/i;
const MAX_STATUS_METRICS = 2000;

export interface MetricDef {
  readonly name: string;
  readonly datatype: Datatype;
  readonly alias: number | null;
}

export interface MetricTable {
  readonly byName: Map<string, MetricDef>;
  readonly byAlias: Map<number, MetricDef>;
}

export const emptyTable = (): MetricTable => ({ byName: new Map(), byAlias: new Map() });

/** One entry of `status.metrics`: name, datatype, alias, properties and the last value seen. */
export type StatusMetric = { [key: string]: JsonValue };

/** Says what is wrong with a message of this node or device (a `device.badMessage`). */
export type BadMetric = (code: string, message: string) => void;

/** The definitions of a birth's metrics; one without name or datatype is reported and left out. */
export function birthTable(type: string, metrics: readonly SparkplugMetric[], bad: BadMetric): MetricTable {
  const table = emptyTable();
  for (const m of metrics) {
    if (m.name === undefined || m.datatype === undefined) {
      bad(
        'badBirth',
        `${type}: a metric without ${m.name === undefined ? 'name' : `datatype ('${m.name.slice(0, 100)}')`}`,
      );
      continue;
    }
    const def: MetricDef = { name: m.name, datatype: m.datatype, alias: m.alias ?? null };
    table.byName.set(m.name, def);
    if (m.alias !== undefined) {
      const other = table.byAlias.get(m.alias);
      if (other && other.name !== m.name)
        bad('duplicateAlias', `${type}: alias ${m.alias} names both '${other.name}' and '${m.name}'`);
      table.byAlias.set(m.alias, def);
    }
  }
  return table;
}

/** The birth's definition of a metric (by alias or name); a bad one is reported and skipped. */
export function resolveMetric(
  table: MetricTable,
  m: SparkplugMetric,
  type: string,
  bad: BadMetric,
): MetricDef | undefined {
  let def: MetricDef | undefined;
  if (m.name !== undefined) {
    def = table.byName.get(m.name);
    if (!def) {
      bad('unknownMetric', `${type}: metric '${m.name.slice(0, 100)}' is not in the birth`);
      return undefined;
    }
  } else if (m.alias !== undefined) {
    def = table.byAlias.get(m.alias);
    if (!def) {
      bad('unknownAlias', `${type}: alias ${m.alias} is not in the birth`);
      return undefined;
    }
  } else {
    bad('noName', `${type}: a metric with neither name nor alias`);
    return undefined;
  }
  if (m.datatype !== undefined && m.datatype !== def.datatype) {
    bad(
      'wrongDatatype',
      `${type}: metric '${def.name.slice(0, 100)}' is ${def.datatype} in the birth, ${m.datatype} here`,
    );
    return undefined;
  }
  return def;
}

/**
 * The values of one message, in metric order: each confirms the writes it matches
 * (`valueReported`) and updates `shown`; numbers and booleans become telemetry, one write per
 * timestamp; the status's values are written (`showValues`) when one changed.
 */
export function applyValues(
  emit: (effect: SparkplugEffect) => void,
  bad: BadMetric,
  id: string,
  table: MetricTable,
  p: SparkplugPayload,
  type: string,
  shown?: StatusMetric[],
): void {
  const byTs = new Map<number | null, Record<string, number>>();
  let shownChanged = false;
  for (const m of p.metrics) {
    const def = resolveMetric(table, m, type, bad);
    if (!def) continue;
    if (m.name === BDSEQ_METRIC && type === 'NBIRTH') continue;
    const value = valueAs(m, def.datatype);
    if (value === null) continue;
    if (shown) {
      const json = scalarJson(def.datatype, value);
      const entry = shown.find((e) => e.name === def.name);
      if (entry && json !== undefined && entry.value !== json) {
        entry.value = json;
        shownChanged = true;
      }
    }
    emit({ type: 'valueReported', id, metric: def.name, datatype: def.datatype, value, reportedIn: type });
    if (CONTROL_PREFIXES.some((prefix) => def.name.startsWith(prefix))) continue;
    const n = telemetryValue(def.datatype, value);
    if (n === undefined) continue;
    const ts = m.timestamp ?? p.timestamp ?? null;
    let values = byTs.get(ts);
    if (!values) {
      values = {};
      byTs.set(ts, values);
    }
    values[def.name] = n;
  }
  if (shown && shownChanged) emit({ type: 'showValues', id, shown });
  for (const [ts, values] of byTs) emit({ type: 'telemetry', id, values, ts });
}

/** The firmware a birth names (a metric like `Firmware Version`), at most 64 characters. */
export function firmwareOf(metrics: readonly SparkplugMetric[]): string | null {
  const m = metrics.find(
    (x) =>
      x.name !== undefined && FIRMWARE_NAME.test(x.name) && typeof x.value === 'string' && x.value !== '',
  );
  return m ? (m.value as string).slice(0, 64) : null;
}

/** The birth's metric definitions for the status: name, datatype, alias, properties, value. */
export function statusMetrics(table: MetricTable, metrics: readonly SparkplugMetric[]): StatusMetric[] {
  const out: StatusMetric[] = [];
  for (const m of metrics) {
    if (out.length >= MAX_STATUS_METRICS) break;
    const def = m.name !== undefined ? table.byName.get(m.name) : undefined;
    if (!def) continue;
    const value = scalarJson(def.datatype, m.value);
    out.push({
      name: def.name,
      datatype: def.datatype,
      alias: def.alias,
      ...(m.properties ? { properties: m.properties } : {}),
      ...(value !== undefined ? { value } : {}),
    });
  }
  return out;
}

/** The bdSeq metric's value, if the message carries one. */
export function bdSeqOf(metrics: readonly SparkplugMetric[]): number | undefined {
  const m = metrics.find((x) => x.name === BDSEQ_METRIC);
  return m && typeof m.value === 'number' ? m.value : undefined;
}
