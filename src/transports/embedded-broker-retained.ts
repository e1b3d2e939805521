/**
 * The embedded broker's persistence: aedes-persistence's memory store, except that a SUBSCRIBE to
 * exact topics (no `+` or `#`) finds its retained messages by a map lookup.
 *
 * aedes-persistence 11's memory store answers every SUBSCRIBE by testing each retained topic
 * against each pattern (`retainedMessagesByPattern`, asyncPersistence.js:20): O(retained) per
 * subscription. A device subscribes to its own `cmd` and `fw` topics at every connect, and every
 * device leaves retained `hello` and `status`, so a fleet reconnecting (a broker restart, the
 * reboots of a rollout) costs O(devices²) tests: with 1,000 devices rebooting during the firmware
 * bench, a third of the broker's CPU went there. Wildcard patterns (the host's) still scan.
 *
 * @example
 * const broker = await Aedes.createBroker({ persistence: exactRetainedPersistence() });
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { AedesMemoryPersistence } from 'aedes-persistence';

// A CommonJS module whose typings declare an ES default export: required, as aedes itself imports it.
const memory = createRequire(import.meta.url)('aedes-persistence') as () => AedesMemoryPersistence;

/** The part of an aedes packet kept as retained. */
interface RetainedPacket {
  readonly topic: string;
  readonly payload: Buffer | string;
}

/** The two methods this wraps, as aedes 1.x calls them (aedes.js, handlers/subscribe.js). */
interface RetainedMethods {
  storeRetained(packet: RetainedPacket, cb?: (error: Error | null) => void): Promise<void> | undefined;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

const isExact = (pattern: string): boolean => !pattern.includes('+') && !pattern.includes('#');

/** aedes-persistence's memory store with exact-topic retained lookups (see the module comment). */
export function exactRetainedPersistence(): AedesMemoryPersistence {
  const persistence = memory();
  const methods = persistence as unknown as RetainedMethods;
  // The same content as the store's own map (topic → a copy of the packet), kept beside it.
  const retained = new Map<string, RetainedPacket>();
  const store = methods.storeRetained.bind(persistence);
  const combi = methods.createRetainedStreamCombi.bind(persistence);
  methods.storeRetained = (packet, cb) => {
    if (packet.payload.length === 0) retained.delete(packet.topic);
    else retained.set(packet.topic, { ...packet });
    return store(packet, cb);
  };
  methods.createRetainedStreamCombi = (patterns) => {
    if (!patterns.every(isExact)) return combi(patterns);
    const found: RetainedPacket[] = [];
    for (const p of patterns) {
      const packet = retained.get(p);
      if (packet) found.push(packet);
    }
    return Readable.from(found);
  };
  return persistence;
}
