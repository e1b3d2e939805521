/**
 * The fleet as the Sparkplug session model sees it (its `SparkplugFleetFacts` port), kept in a
 * map: for the model's tests, which run without a broker, a store or a fleet process.
 *
 * @example
 * const fleet = inMemoryFleetFacts();
 * const model = new SparkplugModel({ fleet: fleet.facts, … });
 * fleet.devices.get('Plant1-Line4'); // what the model added
 */
import type {
  SparkplugFleetDevice,
  SparkplugFleetFacts,
} from '../../src/conventions/sparkplug/sparkplug-effects.js';

export function inMemoryFleetFacts(): {
  devices: Map<string, SparkplugFleetDevice>;
  facts: SparkplugFleetFacts;
} {
  const devices = new Map<string, SparkplugFleetDevice>();
  const facts: SparkplugFleetFacts = {
    device: (id) => devices.get(id),
    has: (id) => devices.has(id),
    list: () => [...devices.values()],
    addDevice: async (input) => {
      if (devices.has(input.id))
        return { ok: false, error: { code: 'alreadyExists', message: `${input.id} exists` } };
      devices.set(input.id, {
        id: input.id,
        kind: input.kind,
        attributes: input.attributes,
        link: { up: false, since: null },
      });
      return { ok: true };
    },
  };
  return { devices, facts };
}
