/**
 * Asking a device for its hello. A device that sends but whose hello this host never got (a broker
 * dropped the retained hello of a burst, as Mosquitto's default queue limit does when a host
 * starts under thousands of devices) is asked for one with the `hello` command every device
 * implements (docs/protocol.md §4), at most every {@link HELLO_ASK_EVERY_MS}: a device of the
 * fleet, whose answer brings it online, and one the fleet does not know yet, whose answer lists it
 * as discovered (src/transports/hub-discovery.ts). The command is the hub's own: its reply is
 * taken quietly, not as an unknown command.
 *
 * @example
 * const asker = createHelloAsker({ runtime });
 * asker.ask('pump-7', link); // sends { type: 'cmd', action: 'hello', cmdId }
 * asker.ownReply(reply.cmdId); // true once: the reply is ours
 */
import type { Runtime } from '../runtime/runtime.js';
import type { LinkHandle } from './link-session.js';
import { newCommandId } from './protocol.js';

/**
 * A device heard from without a known hello is asked again after this long if its hello still
 * has not come (the ask or its answer can be dropped by the same full queue that dropped the
 * retained hello), then after twice as long each time, up to {@link HELLO_ASK_EVERY_MS}.
 */
export const HELLO_ASK_FIRST_RETRY_MS = 5_000;
/** The longest wait between two asks of one device. */
export const HELLO_ASK_EVERY_MS = 30_000;

/** How long after its `tries`-th ask (1, 2, …) a device is asked again. */
export function helloAskWaitMs(tries: number): number {
  return Math.min(HELLO_ASK_EVERY_MS, HELLO_ASK_FIRST_RETRY_MS * 2 ** Math.max(0, tries - 1));
}
/** Hello commands of the hub's own whose replies are still expected (bounded: a flood cannot grow it). */
const MAX_OWN_HELLO_COMMANDS = 20_000;
/** Devices whose last ask is remembered (bounded: devices not in the fleet are asked too). */
const MAX_ASKED_DEVICES = 20_000;

export interface HelloAsker {
  /**
   * Asks the device on `link` for its hello, unless it was asked less than {@link helloAskWaitMs}
   * ago (5 s after the first ask, doubling to 30 s), or `allow` (asked only when it would be
   * sent) refuses.
   */
  ask(id: string, link: LinkHandle, allow?: () => boolean): void;
  /** Its hello came: if it is ever missing again, the device is asked at once. */
  heard(id: string): void;
  /** True for the reply to a hello command of ours (once: it is forgotten then). */
  ownReply(cmdId: string): boolean;
}

export function createHelloAsker(options: { readonly runtime: Runtime }): HelloAsker {
  const { runtime } = options;
  /** Per device: when it was last asked and how many times since its hello was last heard. */
  const asked = new Map<string, { at: number; tries: number }>();
  const ownHelloCommands = new Set<string>();
  return {
    ask(id, link, allow) {
      const at = runtime.clock.wallNow();
      const last = asked.get(id);
      if (last !== undefined && at - last.at < helloAskWaitMs(last.tries)) return;
      if (allow && !allow()) return;
      asked.delete(id); // re-inserted last: the oldest asks go first past the bound
      asked.set(id, { at, tries: (last?.tries ?? 0) + 1 });
      if (asked.size > MAX_ASKED_DEVICES) asked.delete(asked.keys().next().value as string);
      const cmdId = newCommandId('hello');
      ownHelloCommands.add(cmdId);
      if (ownHelloCommands.size > MAX_OWN_HELLO_COMMANDS)
        ownHelloCommands.delete(ownHelloCommands.values().next().value as string);
      if (link.send(id, { v: 1, type: 'cmd', cmdId, action: 'hello' }))
        runtime.logger.debug('device sends but its hello is unknown: asked for one', {
          deviceId: id,
          via: link.via,
        });
    },
    heard: (id) => {
      asked.delete(id);
    },
    ownReply: (cmdId) => ownHelloCommands.delete(cmdId),
  };
}
