/** Shared by the link tests: condition polling, unique ids, free ports and the brokers to run against. */
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import type { Fleet } from '../../src/devices/fleet/types.js';

/** Polls `predicate` every 10 ms; throws naming `what` after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean,
  timeoutMs = 5000,
  what = 'condition',
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

let counter = 0;
/** An id unique across test runs (retained messages outlive a run on a shared Mosquitto). */
export function uniqueId(prefix = 't'): string {
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36)}${(++counter).toString(36)}`;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** `mosquitto` when FLEETVISOR_TEST_MQTT_URL is set (CI sets it); the embedded broker always runs. */
export const externalBrokerUrl: string | undefined = process.env.FLEETVISOR_TEST_MQTT_URL || undefined;

/**
 * `fleet.act` on a Homie device, asked again while its description is still arriving: it comes as
 * many retained messages, and a set asked before its property's `$settable` arrived is refused
 * badArgs (`no property`, `not settable`); seen under the loaded full suite, after a bridge restart
 * too. Any other answer, or the same one after `timeoutMs`, is returned as it is.
 */
export async function actWhenDescribed(
  fleet: Pick<Fleet, 'act'>,
  id: string,
  action: string,
  args: Record<string, unknown>,
  actor?: string,
  timeoutMs = 10_000,
): ReturnType<Fleet['act']> {
  const until = Date.now() + timeoutMs;
  let r = await fleet.act(id, action, args, actor);
  while (
    !r.ok &&
    r.error.code === 'badArgs' &&
    /no property|not settable/.test(r.error.message) &&
    Date.now() < until
  ) {
    await new Promise((done) => setTimeout(done, 100));
    r = await fleet.act(id, action, args, actor);
  }
  return r;
}
