/**
 * The embedded MQTT broker as a supervised process: the app's root starts it as its first child,
 * so it shows in the tree and a kill from the tree restarts it. A restart listens on the port the
 * broker had, so devices and the host's own MQTT link reconnect to the same URL.
 *
 * @example
 * const spec = brokerChild(runtime, { host: '127.0.0.1', port: 1883, logger }, (b) => (current = b));
 * await startSupervisor(runtime, { name: 'fleetvisor', children: [spec] });
 */
import type { ChildSpec } from '../runtime/child-spec.js';
import { ProcessBase } from '../runtime/process.js';
import type { Runtime } from '../runtime/runtime.js';
import type { EmbeddedBroker, EmbeddedBrokerOptions } from '../transports/embedded-broker.js';
import { startEmbeddedBroker } from '../transports/embedded-broker.js';

export class BrokerProcess extends ProcessBase {
  constructor(
    runtime: Runtime,
    readonly broker: EmbeddedBroker,
  ) {
    super(runtime, 'server', 'mqtt-broker');
    this.started();
  }

  protected terminate(): Promise<void> {
    return this.broker.close();
  }

  protected override release(): void {
    this.broker
      .close()
      .catch((error: unknown) => this.runtime.report('closing the killed broker failed', error));
  }
}

/**
 * The root's `broker` child. `onStarted` gets each broker started (the first and every restart).
 * Its start throws what {@link startEmbeddedBroker} throws (bad options, a listen error).
 */
export function brokerChild(
  runtime: Runtime,
  options: EmbeddedBrokerOptions,
  onStarted: (broker: EmbeddedBroker) => void,
): ChildSpec {
  let port = options.port;
  return {
    id: 'broker',
    shutdown: 10_000,
    start: async () => {
      const broker = await startEmbeddedBroker({ ...options, ...(port !== undefined ? { port } : {}) });
      port = broker.port;
      onStarted(broker);
      return new BrokerProcess(runtime, broker);
    },
  };
}
