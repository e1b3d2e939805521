/** The action form generator: JSON Schema (as zod's toJSONSchema writes it) → fields or a JSON fallback → args. */
import { describe, expect, it } from 'vitest';
import { buildArgs, initialValues, planForm } from '../../../renderer/src/lib/schema-form.js';

describe('schema form', () => {
  it('plans fields for simple properties with defaults, bounds and enums, and builds typed args', () => {
    const plan = planForm({
      type: 'object',
      properties: {
        mode: { type: 'string', enum: ['auto', 'manual'], default: 'manual' },
        flow: { type: 'number', minimum: 0, maximum: 120, default: 40 },
        seconds: { type: 'integer', minimum: -9007199254740991 },
        purge: { type: 'boolean', default: true },
        version: { type: 'string', pattern: '^[0-9.]+$' },
      },
      required: ['mode', 'flow', 'version'],
    });
    expect(plan.mode).toBe('fields');
    if (plan.mode !== 'fields') return;
    expect(plan.fields.find((f) => f.name === 'seconds')?.minimum).toBeUndefined();
    const values = { ...initialValues(plan), version: '1.2.3', seconds: '' };
    expect(buildArgs(plan, values)).toEqual({
      ok: true,
      args: { mode: 'manual', flow: 40, purge: true, version: '1.2.3' },
    });
    expect(buildArgs(plan, { ...values, flow: '500', version: 'x!' })).toEqual({
      ok: false,
      errors: { flow: 'at most 120', version: 'does not match ^[0-9.]+$' },
    });
    expect(buildArgs(plan, { ...values, seconds: '1.5' })).toMatchObject({
      ok: false,
      errors: { seconds: 'a whole number' },
    });
  });

  it('falls back to JSON for records and nested shapes, and takes no fields for an empty object', () => {
    expect(
      planForm({ type: 'object', propertyNames: { type: 'string' }, additionalProperties: {} }).mode,
    ).toBe('json');
    expect(planForm({ type: 'object', properties: { nested: { type: 'object' } } }).mode).toBe('json');
    expect(planForm({ type: 'object', properties: {}, additionalProperties: false })).toEqual({
      mode: 'fields',
      fields: [],
    });
    const json = planForm({ type: 'object', additionalProperties: {} });
    expect(buildArgs(json, { json: '{"a": [1, 2]}' })).toEqual({ ok: true, args: { a: [1, 2] } });
    expect(buildArgs(json, { json: '[1]' })).toMatchObject({ ok: false });
  });
});
