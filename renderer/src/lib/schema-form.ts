/**
 * Plans an action's argument form from its JSON Schema (what `z.toJSONSchema` makes of the
 * action's zod schema): an object whose properties are numbers, integers, strings, booleans or
 * enums becomes one input per property, with defaults, bounds and patterns; anything else
 * (records, unions, nested objects, arrays) falls back to a JSON textarea. Validation here is a
 * courtesy — the host validates again at its boundary and names the field.
 *
 * @example
 * const plan = planForm({ type: 'object', properties: { seconds: { type: 'integer', minimum: 1, default: 5 } } });
 * const values = initialValues(plan);      // { seconds: '5' }
 * buildArgs(plan, values);                 // { ok: true, args: { seconds: 5 } }
 */
import type { Json } from '../../../src/host/contract.js';

export type FieldKind = 'number' | 'integer' | 'string' | 'boolean' | 'enum';
export type EnumOption = string | number | boolean | null;

export interface FormField {
  readonly name: string;
  readonly kind: FieldKind;
  readonly required: boolean;
  readonly description?: string;
  readonly defaultValue?: Json;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly options?: readonly EnumOption[];
}

export type FormPlan =
  | { readonly mode: 'fields'; readonly fields: readonly FormField[] }
  | { readonly mode: 'json'; readonly reason: string; readonly example: string };

/** What the inputs hold: text for text/number inputs and selects (enum index), booleans for checkboxes. */
export type FormValues = Readonly<Record<string, string | boolean>>;

export type BuildResult =
  | { readonly ok: true; readonly args: Record<string, Json> }
  | { readonly ok: false; readonly errors: Readonly<Record<string, string>> };

type Schema = { readonly [key: string]: Json };

const isObject = (v: Json | undefined): v is Schema =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
// zod writes ±MAX_SAFE_INTEGER bounds for plain ints: not worth showing to an operator.
const sensible = (n: Json | undefined): number | undefined =>
  typeof n === 'number' && Math.abs(n) < 1e15 ? n : undefined;

export function planForm(schema: Json): FormPlan {
  if (schema === null) return { mode: 'fields', fields: [] };
  if (!isObject(schema)) return json('the schema is not an object', {});
  const meaningful = Object.keys(schema).filter(
    (k) => k !== '$schema' && k !== 'title' && k !== 'description',
  );
  if (meaningful.length === 0) return json('the schema accepts anything', {});
  if (schema.type !== 'object') return json(`arguments of type ${JSON.stringify(schema.type ?? 'any')}`, {});
  const properties = isObject(schema.properties) ? schema.properties : {};
  const open = schema.additionalProperties !== undefined && schema.additionalProperties !== false;
  if (open && Object.keys(properties).length === 0) return json('free-form settings', {});
  const required = new Set(
    Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === 'string') : [],
  );
  const fields: FormField[] = [];
  for (const [name, property] of Object.entries(properties)) {
    const field = planField(name, property, required.has(name));
    if (!field) return json(`'${name}' needs more than a simple input`, exampleOf(properties));
    fields.push(field);
  }
  return { mode: 'fields', fields };
}

function planField(name: string, property: Json, required: boolean): FormField | null {
  if (!isObject(property)) return null;
  const base = {
    name,
    required,
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    ...(property.default !== undefined ? { defaultValue: property.default } : {}),
  };
  const options = enumOptions(property);
  if (options) return { ...base, kind: 'enum', options };
  const type = property.type;
  if (type === 'boolean') return { ...base, kind: 'boolean' };
  if (type === 'number' || type === 'integer') {
    const bounds: Partial<FormField> = {};
    const assign = (key: 'minimum' | 'maximum' | 'exclusiveMinimum' | 'exclusiveMaximum') => {
      const v = sensible(property[key]);
      if (v !== undefined) (bounds as Record<string, number>)[key] = v;
    };
    assign('minimum');
    assign('maximum');
    assign('exclusiveMinimum');
    assign('exclusiveMaximum');
    return { ...base, ...bounds, kind: type };
  }
  if (type === 'string') {
    return {
      ...base,
      kind: 'string',
      ...(typeof property.minLength === 'number' ? { minLength: property.minLength } : {}),
      ...(typeof property.maxLength === 'number' ? { maxLength: property.maxLength } : {}),
      ...(typeof property.pattern === 'string' ? { pattern: property.pattern } : {}),
    };
  }
  return null;
}

function enumOptions(property: Schema): EnumOption[] | null {
  const isOption = (v: Json): v is EnumOption => v === null || typeof v !== 'object';
  if (Array.isArray(property.enum) && property.enum.every(isOption)) return [...property.enum];
  if (property.const !== undefined && isOption(property.const)) return [property.const];
  const alternatives = property.anyOf ?? property.oneOf;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    const values = alternatives.map((a) => (isObject(a) && a.const !== undefined ? a.const : undefined));
    if (values.every((v): v is EnumOption => v !== undefined && isOption(v))) return values;
  }
  return null;
}

function exampleOf(properties: Schema): Json {
  const example: Record<string, Json> = {};
  for (const [name, p] of Object.entries(properties))
    if (isObject(p) && p.default !== undefined) example[name] = p.default;
  return example;
}

function json(reason: string, example: Json): FormPlan {
  return { mode: 'json', reason, example: JSON.stringify(example, null, 2) };
}

export function initialValues(plan: FormPlan): FormValues {
  if (plan.mode === 'json') return { json: plan.example };
  const values: Record<string, string | boolean> = {};
  for (const field of plan.fields) {
    const d = field.defaultValue;
    if (field.kind === 'boolean') values[field.name] = d === true;
    else if (field.kind === 'enum') {
      const i = d === undefined ? -1 : field.options!.indexOf(d as EnumOption);
      values[field.name] = i >= 0 ? String(i) : field.required ? '0' : '';
    } else values[field.name] = d === undefined || d === null ? '' : String(d);
  }
  return values;
}

export function buildArgs(plan: FormPlan, values: FormValues): BuildResult {
  if (plan.mode === 'json') {
    const text = String(values.json ?? '').trim();
    if (text === '') return { ok: true, args: {} };
    try {
      const parsed = JSON.parse(text) as Json;
      if (!isObject(parsed)) return { ok: false, errors: { json: 'arguments must be a JSON object' } };
      return { ok: true, args: { ...parsed } };
    } catch (error) {
      return { ok: false, errors: { json: error instanceof Error ? error.message : 'not JSON' } };
    }
  }
  const args: Record<string, Json> = {};
  const errors: Record<string, string> = {};
  for (const field of plan.fields) {
    const raw = values[field.name];
    const result = readField(field, raw);
    if ('error' in result) errors[field.name] = result.error;
    else if (result.value !== undefined) args[field.name] = result.value;
  }
  return Object.keys(errors).length > 0 ? { ok: false, errors } : { ok: true, args };
}

function readField(
  field: FormField,
  raw: string | boolean | undefined,
): { value: Json | undefined } | { error: string } {
  if (field.kind === 'boolean') return { value: raw === true };
  const text = typeof raw === 'string' ? raw.trim() : '';
  if (text === '') return field.required ? { error: 'required' } : { value: undefined };
  if (field.kind === 'enum') {
    const option = field.options![Number(text)];
    return option === undefined ? { error: 'choose a value' } : { value: option };
  }
  if (field.kind === 'string') {
    if (field.minLength !== undefined && text.length < field.minLength)
      return { error: `at least ${field.minLength} characters` };
    if (field.maxLength !== undefined && text.length > field.maxLength)
      return { error: `at most ${field.maxLength} characters` };
    if (field.pattern !== undefined) {
      let re: RegExp | null = null;
      try {
        re = new RegExp(field.pattern, 'u');
      } catch {
        re = null; // a pattern this browser cannot compile: leave it to the host
      }
      if (re && !re.test(text)) return { error: `does not match ${field.pattern}` };
    }
    return { value: text };
  }
  const n = Number(text);
  if (!Number.isFinite(n)) return { error: 'a number' };
  if (field.kind === 'integer' && !Number.isInteger(n)) return { error: 'a whole number' };
  if (field.minimum !== undefined && n < field.minimum) return { error: `at least ${field.minimum}` };
  if (field.maximum !== undefined && n > field.maximum) return { error: `at most ${field.maximum}` };
  if (field.exclusiveMinimum !== undefined && n <= field.exclusiveMinimum)
    return { error: `more than ${field.exclusiveMinimum}` };
  if (field.exclusiveMaximum !== undefined && n >= field.exclusiveMaximum)
    return { error: `less than ${field.exclusiveMaximum}` };
  return { value: n };
}
