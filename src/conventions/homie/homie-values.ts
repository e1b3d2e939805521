/**
 * Homie (v3.0.1 and v4) ids, datatypes and formats as pure functions: what a property value
 * means, whether it is valid for its `$datatype` / `$format`, what a `set` payload must look like,
 * and the JSON Schema of a property's value for generated forms.
 *
 * Datatypes (default `string` when a device does not say): `integer` and `float` (format `from:to`,
 * either end optional), `boolean` (`true` / `false`), `enum` (format `a,b,c`), `color` (format
 * `rgb`: `r,g,b` 0–255; `hsv`: `h,s,v` 0–360, 0–100, 0–100; `xyz`: `x,y[,z]` 0–1), `datetime`
 * (ISO 8601), `duration` (ISO 8601, e.g. `PT12H5M46S`), `string`.
 *
 * @example
 * const count = { datatype: 'integer', format: '0:100' } as const;
 * parseValue(count, '42');   // { ok: true, number: 42, text: '42' }
 * parseValue(count, 'abc');  // { ok: false, message: "'abc' is not an integer" }
 * encodeSetValue(count, 500); // { ok: false, message: '500 is outside 0:100' }
 * propertyValueSchema({ ...count, name: 'Count' }); // { type: 'integer', minimum: 0, maximum: 100, title: 'Count' }
 */

/** A Homie topic id (device, node, property): `[a-z0-9-]`, not starting with a hyphen. */
export const HOMIE_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** True for a valid Homie id (at most 64 characters, as Fleetvisor device ids). */
export function isHomieId(s: string): boolean {
  return HOMIE_ID.test(s);
}

/** A base topic: one or more levels of `[A-Za-z0-9_.-]`, no wildcards, not starting with `$`. */
export const BASE_TOPIC = /^(?!\$)[A-Za-z0-9_.-]{1,64}(?:\/[A-Za-z0-9_.-]{1,64}){0,7}$/;

export const HOMIE_DATATYPES = [
  'integer',
  'float',
  'boolean',
  'string',
  'enum',
  'color',
  'datetime',
  'duration',
] as const;
export type HomieDatatype = (typeof HOMIE_DATATYPES)[number];

export function isHomieDatatype(s: string): s is HomieDatatype {
  return (HOMIE_DATATYPES as readonly string[]).includes(s);
}

/** What a value is checked against: a property's `$datatype` and `$format`. */
export interface ValueSpec {
  readonly datatype: HomieDatatype;
  readonly format: string | null;
}

/** A format, parsed for its datatype. */
export type ParsedFormat =
  | { readonly kind: 'none' }
  | { readonly kind: 'range'; readonly min: number | undefined; readonly max: number | undefined }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'color'; readonly model: 'rgb' | 'hsv' | 'xyz' };

type R<T> = ({ readonly ok: true } & T) | { readonly ok: false; readonly message: string };

const NUMBER = '[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][-+]?\\d+)?';
const INTEGER_RE = /^[-+]?\d+$/;
const FLOAT_RE = new RegExp(`^${NUMBER}$`);
const RANGE_RE = new RegExp(`^(${NUMBER})?:(${NUMBER})?$`);
const DURATION_RE =
  /^P(?!$)(?:\d+Y)?(?:\d+M)?(?:\d+W)?(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$/;
const DATETIME_RE = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** A received string made safe for a message: quoted, capped. */
export function quote(s: string, max = 60): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/**
 * Parses `$format` for a datatype. A missing format is `none` (anything of the datatype goes);
 * a malformed one is an error naming it.
 *
 * @example
 * parseFormat('float', '-20:60.5'); // { ok: true, format: { kind: 'range', min: -20, max: 60.5 } }
 * parseFormat('enum', 'a,,b');      // { ok: false, message: … }
 */
export function parseFormat(datatype: HomieDatatype, format: string | null): R<{ format: ParsedFormat }> {
  if (format === null || format === '') return { ok: true, format: { kind: 'none' } };
  switch (datatype) {
    case 'integer':
    case 'float': {
      const m = RANGE_RE.exec(format);
      if (!m) return { ok: false, message: `$format ${quote(format)} is not a range like 0:100` };
      const min = m[1] === undefined ? undefined : Number(m[1]);
      const max = m[2] === undefined ? undefined : Number(m[2]);
      if (min !== undefined && max !== undefined && min > max)
        return { ok: false, message: `$format ${quote(format)}: ${min} is above ${max}` };
      return { ok: true, format: { kind: 'range', min, max } };
    }
    case 'enum': {
      const values = format.split(',');
      if (values.some((v) => v.length === 0))
        return { ok: false, message: `$format ${quote(format)} has an empty enum value` };
      return { ok: true, format: { kind: 'enum', values } };
    }
    case 'color':
      if (format === 'rgb' || format === 'hsv' || format === 'xyz')
        return { ok: true, format: { kind: 'color', model: format } };
      return { ok: false, message: `$format ${quote(format)} is not a color model (rgb, hsv, xyz)` };
    default:
      return { ok: true, format: { kind: 'none' } };
  }
}

/** The format as the value checks need it; a malformed format checks nothing (it is reported apart). */
function formatOf(spec: ValueSpec): ParsedFormat {
  const f = parseFormat(spec.datatype, spec.format);
  return f.ok ? f.format : { kind: 'none' };
}

function inRange(n: number, f: ParsedFormat, raw: string): string | undefined {
  if (f.kind !== 'range') return undefined;
  if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max))
    return `${raw} is outside ${f.min ?? ''}:${f.max ?? ''}`;
  return undefined;
}

/**
 * A received value: `number` is what becomes telemetry (integers and floats as they are,
 * booleans 0/1, enums their index in `$format`), null for text-only datatypes.
 */
export type ParsedValue = R<{ number: number | null; text: string }>;

/**
 * Parses and checks one value against its property's datatype and format.
 *
 * @example
 * parseValue({ datatype: 'boolean', format: null }, 'true'); // { ok: true, number: 1, text: 'true' }
 * parseValue({ datatype: 'enum', format: 'eco,comfort' }, 'comfort'); // { ok: true, number: 1, … }
 */
export function parseValue(spec: ValueSpec, raw: string): ParsedValue {
  const f = formatOf(spec);
  switch (spec.datatype) {
    case 'integer': {
      if (!INTEGER_RE.test(raw)) return { ok: false, message: `${quote(raw)} is not an integer` };
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) return { ok: false, message: `${quote(raw)} is too large an integer` };
      const out = inRange(n, f, raw);
      return out ? { ok: false, message: out } : { ok: true, number: n, text: raw };
    }
    case 'float': {
      if (!FLOAT_RE.test(raw)) return { ok: false, message: `${quote(raw)} is not a number` };
      const n = Number(raw);
      if (!Number.isFinite(n)) return { ok: false, message: `${quote(raw)} is not a finite number` };
      const out = inRange(n, f, raw);
      return out ? { ok: false, message: out } : { ok: true, number: n, text: raw };
    }
    case 'boolean':
      if (raw === 'true') return { ok: true, number: 1, text: raw };
      if (raw === 'false') return { ok: true, number: 0, text: raw };
      return { ok: false, message: `${quote(raw)} is not true or false` };
    case 'enum': {
      if (f.kind !== 'enum') return { ok: true, number: null, text: raw }; // no $format: nothing to index
      const i = f.values.indexOf(raw);
      if (i < 0) return { ok: false, message: `${quote(raw)} is not one of ${f.values.join(', ')}` };
      return { ok: true, number: i, text: raw };
    }
    case 'color': {
      const message = checkColor(raw, f.kind === 'color' ? f.model : undefined);
      return message ? { ok: false, message } : { ok: true, number: null, text: raw };
    }
    case 'datetime':
      if (!DATETIME_RE.test(raw) || Number.isNaN(Date.parse(raw)))
        return { ok: false, message: `${quote(raw)} is not an ISO 8601 date-time` };
      return { ok: true, number: null, text: raw };
    case 'duration':
      if (!DURATION_RE.test(raw))
        return { ok: false, message: `${quote(raw)} is not an ISO 8601 duration like PT1H30M` };
      return { ok: true, number: null, text: raw };
    default:
      return { ok: true, number: null, text: raw };
  }
}

function checkColor(raw: string, model: 'rgb' | 'hsv' | 'xyz' | undefined): string | undefined {
  const parts = raw.split(',');
  if (model === 'xyz') {
    const ok =
      (parts.length === 2 || parts.length === 3) &&
      parts.every((p) => FLOAT_RE.test(p) && Number(p) >= 0 && Number(p) <= 1);
    return ok ? undefined : `${quote(raw)} is not an xyz color like 0.3,0.4`;
  }
  const max = model === 'hsv' ? [360, 100, 100] : [255, 255, 255];
  const ok = parts.length === 3 && parts.every((p, i) => /^\d{1,3}$/.test(p) && Number(p) <= (max[i] ?? 255));
  if (ok) return undefined;
  return model === 'hsv'
    ? `${quote(raw)} is not an hsv color like 120,100,50`
    : `${quote(raw)} is not an ${model ?? 'rgb'} color like 255,128,0`;
}

/**
 * The payload for a `set` of `value` (a form's number, boolean or text), checked against the
 * property like a received value.
 *
 * @example
 * encodeSetValue({ datatype: 'boolean', format: null }, true);     // { ok: true, payload: 'true' }
 * encodeSetValue({ datatype: 'integer', format: '0:10' }, 2.5);    // { ok: false, message: '2.5 is not an integer' }
 */
export function encodeSetValue(
  spec: ValueSpec,
  value: string | number | boolean | null,
): R<{ payload: string }> {
  // Numbers and booleans take their JSON type only: the text "12" for an integer is refused (a
  // form that sends text for a number has a bug the device should not be left to find).
  const got = value === null ? 'null' : typeof value === 'string' ? `the text ${quote(value)}` : typeof value;
  let payload: string;
  switch (spec.datatype) {
    case 'integer':
      if (typeof value === 'number') {
        if (!Number.isSafeInteger(value)) return { ok: false, message: `${value} is not an integer` };
        payload = String(value);
      } else if (typeof value === 'string')
        return { ok: false, message: `${quote(value)} is not an integer (a number, not text)` };
      else return { ok: false, message: `expects an integer, got ${got}` };
      break;
    case 'float':
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) return { ok: false, message: `${value} is not a finite number` };
        payload = String(value);
      } else return { ok: false, message: `expects a number, got ${got}` };
      break;
    case 'boolean':
      if (typeof value === 'boolean') payload = value ? 'true' : 'false';
      else if (typeof value === 'string')
        return { ok: false, message: `${quote(value)} is not true or false (a boolean, not text)` };
      else return { ok: false, message: `expects true or false, got ${got}` };
      break;
    default:
      if (typeof value !== 'string') return { ok: false, message: `expects text, got ${got}` };
      payload = value;
  }
  const r = parseValue(spec, payload);
  return r.ok ? { ok: true, payload } : r;
}

/** Whether two payloads mean the same value (`21.50` is `21.5`; a color ignores spaces). */
export function sameValue(spec: ValueSpec, a: string, b: string): boolean {
  if (a === b) return true;
  const pa = parseValue(spec, a);
  const pb = parseValue(spec, b);
  if (!pa.ok || !pb.ok) return false;
  if (pa.number !== null && pb.number !== null) {
    const scale = Math.max(1, Math.abs(pa.number), Math.abs(pb.number));
    return Math.abs(pa.number - pb.number) <= 1e-9 * scale;
  }
  if (spec.datatype === 'color') return a.replace(/\s/g, '') === b.replace(/\s/g, '');
  return false;
}

/** A property as a form needs it. */
export interface PropertyForm extends ValueSpec {
  readonly name?: string | null;
  readonly unit?: string | null;
}

/**
 * The JSON Schema of a property's value, for a generated form field (the `value` of `set`).
 *
 * @example
 * propertyValueSchema({ datatype: 'enum', format: 'eco,comfort,off', name: 'Mode' });
 * // { type: 'string', enum: ['eco', 'comfort', 'off'], title: 'Mode' }
 */
export function propertyValueSchema(p: PropertyForm): Record<string, unknown> {
  const f = formatOf(p);
  const meta: Record<string, unknown> = {};
  if (p.name) meta.title = p.name;
  if (p.unit) meta.description = `in ${p.unit}`;
  const range = (type: string) => ({
    type,
    ...(f.kind === 'range' && f.min !== undefined ? { minimum: f.min } : {}),
    ...(f.kind === 'range' && f.max !== undefined ? { maximum: f.max } : {}),
    ...meta,
  });
  switch (p.datatype) {
    case 'integer':
      return range('integer');
    case 'float':
      return range('number');
    case 'boolean':
      return { type: 'boolean', ...meta };
    case 'enum':
      return f.kind === 'enum'
        ? { type: 'string', enum: [...f.values], ...meta }
        : { type: 'string', ...meta };
    case 'color':
      return {
        type: 'string',
        pattern:
          f.kind === 'color' && f.model === 'xyz'
            ? `^${NUMBER},${NUMBER}(,${NUMBER})?$`
            : '^\\d{1,3},\\d{1,3},\\d{1,3}$',
        description: f.kind === 'color' ? `${f.model} color` : 'rgb color',
        ...(p.name ? { title: p.name } : {}),
      };
    case 'datetime':
      return { type: 'string', format: 'date-time', ...meta };
    case 'duration':
      return { type: 'string', pattern: DURATION_RE.source, ...meta };
    default:
      return { type: 'string', ...meta };
  }
}
