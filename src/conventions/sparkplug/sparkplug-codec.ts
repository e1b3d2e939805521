/**
 * Sparkplug B 3.0 payloads on the wire, for the bridge: decoding and encoding (through Eclipse
 * Tahu's own codec, `sparkplug-payload` — never a hand-written protobuf), datatypes, and what a
 * value may be. Topics and the STATE payload: sparkplug-topics.ts (re-exported here).
 *
 * Pure code, no I/O. Decoding never throws for any bytes: the size is checked first, a protobuf
 * error becomes `{ ok: false }`, 64-bit values (protobufjs `Long`) become numbers (exact up to
 * 2⁵³), Tahu's compressed payloads (`uuid: SPBV1.0_COMPRESSED`, DEFLATE or GZIP body) are
 * inflated with `node:zlib` within the same size cap. Tahu's decoder drops the value of a metric
 * sent without a datatype (allowed in DATA messages, which may lean on the birth); such a metric
 * keeps its raw value fields here (`untyped`), and {@link valueAs} reads them with the datatype
 * from the birth.
 *
 * @example
 * const p = decodeSparkplugPayload(buffer, { maxBytes: 1 << 20 });
 * if (p.ok) for (const m of p.value.metrics) console.log(m.name ?? m.alias, m.datatype, m.value);
 * const bytes = encodeSparkplugCommand([{ name: 'Node Control/Rebirth', datatype: 'Boolean', value: true }]);
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import sparkplugPayload from 'sparkplug-payload';
import type { UMetric, UPayload } from 'sparkplug-payload/lib/sparkplugbpayload.js';
import protoRoot from 'sparkplug-payload/lib/sparkplugPayloadProto.js';
import type { JsonObject, JsonValue } from '../../store/store.js';
import { SPARKPLUG_NAMESPACE } from './sparkplug-topics.js';

export type { DeviceMessageType, NodeMessageType, SparkplugTopic } from './sparkplug-topics.js';
export {
  commandTopic,
  encodeStatePayload,
  parseSparkplugTopic,
  parseStatePayload,
  SPARKPLUG_NAMESPACE,
  stateTopic,
  topicLevelProblem,
} from './sparkplug-topics.js';

/** The metric a Primary Host sets to ask an edge node for its births again. */
export const REBIRTH_METRIC = 'Node Control/Rebirth';

/** The metric pairing an NDEATH with its NBIRTH. */
export const BDSEQ_METRIC = 'bdSeq';

const COMPRESSED_UUID = 'SPBV1.0_COMPRESSED';

const codec = sparkplugPayload.get(SPARKPLUG_NAMESPACE);
if (!codec) throw new Error(`sparkplug-payload has no codec for ${SPARKPLUG_NAMESPACE}`);
const RawPayload = protoRoot.org.eclipse.tahu.protobuf.Payload;

// ---- datatypes and values ----

export type Datatype =
  | 'Int8'
  | 'Int16'
  | 'Int32'
  | 'Int64'
  | 'UInt8'
  | 'UInt16'
  | 'UInt32'
  | 'UInt64'
  | 'Float'
  | 'Double'
  | 'Boolean'
  | 'String'
  | 'DateTime'
  | 'Text'
  | 'UUID'
  | 'DataSet'
  | 'Bytes'
  | 'File'
  | 'Template'
  | 'PropertySet'
  | 'PropertySetList';

const INT_RANGE: Readonly<Partial<Record<Datatype, readonly [number, number]>>> = {
  Int8: [-128, 127],
  Int16: [-32_768, 32_767],
  Int32: [-2_147_483_648, 2_147_483_647],
  UInt8: [0, 255],
  UInt16: [0, 65_535],
  UInt32: [0, 4_294_967_295],
  Int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UInt64: [0, Number.MAX_SAFE_INTEGER],
  DateTime: [0, Number.MAX_SAFE_INTEGER],
};
const FLOAT_MAX = 3.4028234663852886e38;
const TEXT_TYPES: ReadonlySet<Datatype> = new Set<Datatype>(['String', 'Text', 'UUID']);
/** Datatypes whose values are stored as telemetry (DateTime is a time, not a measurement). */
const NUMERIC_TYPES: ReadonlySet<Datatype> = new Set<Datatype>([
  'Int8',
  'Int16',
  'Int32',
  'Int64',
  'UInt8',
  'UInt16',
  'UInt32',
  'UInt64',
  'Float',
  'Double',
]);

/** The raw protobuf value fields of a metric sent without a datatype. */
export interface UntypedValue {
  readonly intValue?: number;
  readonly longValue?: number;
  readonly floatValue?: number;
  readonly doubleValue?: number;
  readonly booleanValue?: boolean;
  readonly stringValue?: string;
}

/** One metric as decoded; 64-bit numbers are plain numbers. */
export interface SparkplugMetric {
  readonly name: string | undefined;
  readonly alias: number | undefined;
  /** Undefined when the sender left it out (allowed in DATA: the birth's datatype applies). */
  readonly datatype: Datatype | undefined;
  /** Number, boolean, string, null (`is_null`), or the decoded DataSet/Template/bytes as Tahu gives them. */
  readonly value: unknown;
  readonly timestamp: number | undefined;
  readonly isHistorical: boolean;
  readonly isTransient: boolean;
  readonly properties: JsonObject | undefined;
  /** Set when the datatype was left out: the value fields, read by {@link valueAs}. */
  readonly untyped?: UntypedValue | null;
}

export interface SparkplugPayload {
  readonly timestamp: number | undefined;
  readonly seq: number | undefined;
  readonly metrics: readonly SparkplugMetric[];
  /** The payload was compressed (Tahu's `SPBV1.0_COMPRESSED`) and was inflated. */
  readonly compressed: boolean;
}

export interface DecodeError {
  /** `tooLarge`, `protobuf` (not a Sparkplug B payload), `compression`. */
  readonly code: 'tooLarge' | 'protobuf' | 'compression';
  readonly message: string;
}

const isLong = (v: unknown): v is { toNumber(): number } =>
  typeof v === 'object' &&
  v !== null &&
  'low' in v &&
  'high' in v &&
  typeof (v as { toNumber?: unknown }).toNumber === 'function';

/** A protobufjs Long (or a number) as a number; undefined for anything else. */
export function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (isLong(v)) return v.toNumber();
  return undefined;
}

/** Values as JSON: Longs become numbers, bytes their length, nesting capped; `__proto__` keys dropped. */
export function toJson(v: unknown, depth = 0): JsonValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return v.toString();
  if (isLong(v)) return v.toNumber();
  if (v instanceof Uint8Array) return { bytes: v.byteLength };
  if (depth >= 8) return '…';
  if (Array.isArray(v)) return v.slice(0, 1000).map((x) => toJson(x, depth + 1));
  if (typeof v === 'object') {
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '__proto__' || k === 'constructor' || k === 'prototype' || x === undefined) continue;
      out[k] = toJson(x, depth + 1);
    }
    return out;
  }
  return String(v);
}

/** A property set (`{ key: { type, value } }`) as `{ key: value }`. */
function propertiesJson(p: unknown): JsonObject | undefined {
  if (p === null || typeof p !== 'object') return undefined;
  const out: Record<string, JsonValue> = {};
  for (const [k, x] of Object.entries(p as Record<string, unknown>)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    const value = x !== null && typeof x === 'object' && 'value' in x ? (x as { value: unknown }).value : x;
    out[k] = toJson(value, 1);
  }
  return out;
}

const normalizeValue = (datatype: Datatype | undefined, v: unknown): unknown =>
  isLong(v) && datatype !== 'DataSet' && datatype !== 'Template' ? v.toNumber() : v;

function untypedOf(raw: Record<string, unknown> | undefined): UntypedValue | null {
  if (!raw || raw.isNull === true) return null;
  const out: Record<string, unknown> = {};
  for (const f of ['intValue', 'longValue', 'floatValue', 'doubleValue', 'booleanValue', 'stringValue'])
    if (Object.hasOwn(raw, f) && raw[f] !== null && raw[f] !== undefined)
      out[f] = f === 'longValue' ? numberOf(raw[f]) : raw[f];
  return out as UntypedValue;
}

/**
 * Decodes a Sparkplug B payload with Tahu's codec; never throws.
 *
 * @example
 * const r = decodeSparkplugPayload(Buffer.from([0xff, 0xff]), { maxBytes: 1024 });
 * // { ok: false, error: { code: 'protobuf', message: 'not a Sparkplug B payload: …' } }
 */
export function decodeSparkplugPayload(
  bytes: Uint8Array,
  options: { readonly maxBytes: number },
): { ok: true; value: SparkplugPayload } | { ok: false; error: DecodeError } {
  if (bytes.byteLength > options.maxBytes)
    return {
      ok: false,
      error: {
        code: 'tooLarge',
        message: `payload of ${bytes.byteLength} bytes (limit ${options.maxBytes})`,
      },
    };
  let decoded: UPayload;
  let compressed = false;
  let source = bytes;
  try {
    decoded = codec!.decodePayload(bytes);
    if (decoded.uuid === COMPRESSED_UUID) {
      compressed = true;
      const algorithm = decoded.metrics?.find((m) => m.name === 'algorithm')?.value;
      const body = decoded.body ?? new Uint8Array();
      try {
        const opts = { maxOutputLength: options.maxBytes };
        source =
          typeof algorithm === 'string' && algorithm.toUpperCase() === 'GZIP'
            ? gunzipSync(body, opts)
            : inflateSync(body, opts);
      } catch (error) {
        return {
          ok: false,
          error: {
            code: 'compression',
            message: `compressed payload does not inflate: ${(error as Error).message}`,
          },
        };
      }
      decoded = codec!.decodePayload(source);
    }
  } catch (error) {
    return {
      ok: false,
      error: { code: 'protobuf', message: `not a Sparkplug B payload: ${(error as Error).message}` },
    };
  }
  const metricsIn: readonly UMetric[] = decoded.metrics ?? [];
  let raw: Record<string, unknown>[] | undefined;
  const metrics = metricsIn.map((m, i): SparkplugMetric => {
    const datatype = (m.type as Datatype | undefined) ?? undefined;
    let untyped: UntypedValue | null | undefined;
    if (datatype === undefined) {
      // Tahu's decoder needs the datatype to find the value: read the value fields directly.
      raw ??= RawPayload.decode(source).metrics as unknown as Record<string, unknown>[];
      untyped = untypedOf(raw[i]);
    }
    const metric: SparkplugMetric = {
      name: typeof m.name === 'string' ? m.name : undefined,
      alias: numberOf(m.alias),
      datatype,
      value: normalizeValue(datatype, m.value),
      timestamp: numberOf(m.timestamp),
      isHistorical: m.isHistorical === true,
      isTransient: m.isTransient === true,
      properties: m.properties ? propertiesJson(m.properties) : undefined,
    };
    return untyped === undefined ? metric : { ...metric, untyped };
  });
  return {
    ok: true,
    value: { timestamp: numberOf(decoded.timestamp), seq: numberOf(decoded.seq), metrics, compressed },
  };
}

/**
 * A metric's value read as `datatype` (the birth's, for a metric sent without one); null for
 * `is_null` or a value that is not there.
 */
export function valueAs(metric: SparkplugMetric, datatype: Datatype): unknown {
  if (metric.datatype !== undefined || metric.untyped === undefined) return metric.value;
  const u = metric.untyped;
  if (u === null) return null;
  switch (datatype) {
    case 'Int8':
    case 'Int16':
    case 'Int32':
      return u.intValue === undefined ? null : u.intValue | 0; // sent as uint32 on the wire
    case 'UInt8':
    case 'UInt16':
      return u.intValue ?? null;
    case 'Int64':
    case 'UInt32':
    case 'UInt64':
    case 'DateTime':
      return u.longValue ?? null;
    case 'Float':
      return u.floatValue ?? null;
    case 'Double':
      return u.doubleValue ?? null;
    case 'Boolean':
      return u.booleanValue ?? null;
    case 'String':
    case 'Text':
    case 'UUID':
      return u.stringValue ?? null;
    default:
      return null; // DataSet, Template …: unreadable without their datatype
  }
}

/** The number stored as telemetry for a value of `datatype`; undefined when it is not a measurement. */
export function telemetryValue(datatype: Datatype, value: unknown): number | undefined {
  if (datatype === 'Boolean') return typeof value === 'boolean' ? (value ? 1 : 0) : undefined;
  if (!NUMERIC_TYPES.has(datatype)) return undefined;
  const n = numberOf(value);
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

/** Values a scalar metric can hold; the rest (DataSet, Template, Bytes …) are not writable here. */
export type ScalarValue = number | boolean | string;

/** The value as a JSON scalar for the status, when the datatype is scalar; undefined otherwise. */
export function scalarJson(datatype: Datatype, value: unknown): ScalarValue | null | undefined {
  if (value === null) return null;
  if (datatype === 'Boolean') return typeof value === 'boolean' ? value : undefined;
  if (TEXT_TYPES.has(datatype)) return typeof value === 'string' ? value.slice(0, 1024) : undefined;
  if (NUMERIC_TYPES.has(datatype) || datatype === 'DateTime') {
    const n = numberOf(value);
    return n !== undefined && Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/**
 * Whether `value` fits a metric of `datatype` (a write); the message names the datatype and why.
 *
 * @example
 * checkWriteValue('UInt8', 300);   // { ok: false, message: 'UInt8 takes an integer within 0…255, got 300' }
 * checkWriteValue('Float', '1.5'); // { ok: false, message: 'Float takes a number, got the string "1.5"' }
 */
export function checkWriteValue(
  datatype: Datatype,
  value: unknown,
): { ok: true; value: ScalarValue } | { ok: false; message: string } {
  const got =
    typeof value === 'string'
      ? `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`
      : value === null
        ? 'null'
        : `${typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`}`;
  const range = INT_RANGE[datatype];
  if (range) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1])
      return {
        ok: false,
        message: `${datatype} takes an integer within ${range[0]}…${range[1]}, got ${typeof value === 'number' ? value : got}`,
      };
    return { ok: true, value };
  }
  if (datatype === 'Float' || datatype === 'Double') {
    if (typeof value !== 'number' || !Number.isFinite(value))
      return { ok: false, message: `${datatype} takes a number, got ${got}` };
    if (datatype === 'Float' && Math.abs(value) > FLOAT_MAX)
      return { ok: false, message: `Float takes a number within ±${FLOAT_MAX}, got ${value}` };
    return { ok: true, value };
  }
  if (datatype === 'Boolean') {
    if (typeof value !== 'boolean') return { ok: false, message: `Boolean takes true or false, got ${got}` };
    return { ok: true, value };
  }
  if (TEXT_TYPES.has(datatype)) {
    if (typeof value !== 'string') return { ok: false, message: `${datatype} takes a string, got ${got}` };
    return { ok: true, value };
  }
  return {
    ok: false,
    message: `writing ${datatype} metrics is not supported (only numbers, booleans and strings)`,
  };
}

/** Whether a reported value is the written one (a Float compares at single precision). */
export function sameValue(datatype: Datatype, written: ScalarValue, reported: unknown): boolean {
  if (datatype === 'Float' && typeof written === 'number') {
    const r = numberOf(reported);
    return r !== undefined && Math.fround(r) === Math.fround(written);
  }
  if (typeof written === 'number') return numberOf(reported) === written;
  return reported === written;
}

/**
 * An NCMD/DCMD payload (no seq: commands carry none), through Tahu's encoder.
 *
 * @example
 * client.publish(commandTopic(g, n), Buffer.from(encodeSparkplugCommand([{ name: 'setpoint', datatype: 'Int32', value: 42 }])), { qos: 0 });
 */
export function encodeSparkplugCommand(
  metrics: readonly { readonly name: string; readonly datatype: Datatype; readonly value: ScalarValue }[],
  timestamp: number = Date.now(),
): Uint8Array {
  return codec!.encodePayload({
    timestamp,
    metrics: metrics.map((m) => ({ name: m.name, type: m.datatype, value: m.value, timestamp })),
  });
}

/** Any payload through Tahu's encoder (for peers and tests). */
export function encodeSparkplugPayload(payload: UPayload): Uint8Array {
  return codec!.encodePayload(payload);
}
