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

/** How often a device heard from without a known hello is asked for one. */
export const HELLO_ASK_EVERY_MS = 30_000;
/** Hello commands of the hub's own whose replies are still expected (bounded: a flood cannot grow it). */
const MAX_OWN_HELLO_COMMANDS = 20_000;
/** Devices whose last ask is remembered (bounded: devices not in the fleet are asked too). */
const MAX_ASKED_DEVICES = 20_000;

export interface HelloAsker {
  /**
   * Asks the device on `link` for its hello, unless it was asked less than {@link HELLO_ASK_EVERY_MS}
   * ago, or `allow` (asked only when it would be sent) refuses.
   */
  ask(id: string, link: LinkHandle, allow?: () => boolean): void;
  /** Its hello came: if it is ever missing again, the device is asked at once. */
  heard(id: string): void;
  /** True for the reply to a hello command of ours (once: it is forgotten then). */
  ownReply(cmdId: string): boolean;
}

export function createHelloAsker(options: { readonly runtime: Runtime }): HelloAsker {
  const { runtime } = options;
  const helloAskedAt = new Map<string, number>();
  const ownHelloCommands = new Set<string>();
  return {
    ask(id, link, allow) {
      const at = runtime.clock.wallNow();
      const last = helloAskedAt.get(id);
      if (last !== undefined && at - last < HELLO_ASK_EVERY_MS) return;
      if (allow && !allow()) return;
      helloAskedAt.delete(id); // re-inserted last: the oldest asks go first past the bound
      helloAskedAt.set(id, at);
      if (helloAskedAt.size > MAX_ASKED_DEVICES)
        helloAskedAt.delete(helloAskedAt.keys().next().value as string);
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
      helloAskedAt.delete(id);
    },
    ownReply: (cmdId) => ownHelloCommands.delete(cmdId),
  };
}
