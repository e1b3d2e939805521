/**
 * The Discovered view asks for every page of the host's list: with 2,000 devices waiting (a real
 * fleet's first start with manual adoption) it counted and adopted only the first 1,000.
 */
import { describe, expect, it } from 'vitest';
import { allDiscovered } from '../../../renderer/src/lib/discovered.js';
import type { DiscoveredView, TypedClient } from '../../../src/host/contract.js';

function hostWith(n: number) {
  const asked: { offset: number; limit: number }[] = [];
  const rows = Array.from({ length: n }, (_, i) => ({ id: `real-m${i + 1}` }) as unknown as DiscoveredView);
  const client = {
    call: async (_method: 'discovered', a: { offset: number; limit: number }) => {
      asked.push(a);
      return { ok: true as const, value: rows.slice(a.offset, a.offset + Math.min(a.limit, 1000)) };
    },
  } as unknown as TypedClient;
  return { client, asked };
}

describe('allDiscovered', () => {
  it('gathers 2,000 waiting devices over pages of 1,000', async () => {
    const { client, asked } = hostWith(2000);
    const r = await allDiscovered(client);
    expect(r.ok && r.value.length).toBe(2000);
    expect(asked.map((a) => a.offset)).toEqual([0, 1000, 2000]);
  });

  it('asks once when the list fits in a page', async () => {
    const { client, asked } = hostWith(7);
    const r = await allDiscovered(client);
    expect(r.ok && r.value.map((d) => d.id)).toHaveLength(7);
    expect(asked).toHaveLength(1);
  });
});
