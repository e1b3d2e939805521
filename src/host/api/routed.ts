/**
 * In a cluster (docs/scale-out.md), the calls on one device that only the instance running it can
 * carry out or answer go to that instance, whichever instance was asked: `device`,
 * `deviceInspect`, `sendEvent`, `restartDevice`, `adopt`, `cancelCommand`, `firmwareUpdate` (the
 * image shared through the database first), `firmwareCancel` and `firmwareJobs` of one device (`act` routes
 * itself, device by device of a bulk action). One mechanism, the cluster's router
 * (src/cluster/command-router.ts): on the owner, the call runs through this API's own handler of
 * the same name (validated again, audited there, written under the owner's lease) and its
 * envelope comes back as it is, refusals in the API's codes. Besides the handler's own refusals a
 * routed call may be refused `noOwner` (no instance leases the device's shard now: retry in a few
 * seconds), `ownerDidNotAnswer` (its message says whether it was carried out), `routingFailed`,
 * `badAnswer`, `notFound` (not in the fleet's table) or `unavailable` (this instance is stopping).
 *
 * `cancelCommand` names no device: its device is read from the fleet's command log; a command the
 * log does not know is answered here (`cancelled: false`, as on a single instance).
 *
 * Not routed: `processInfo`, `killProcess`, `restartChild`, `terminateChild` (they name a process
 * by its pid, which is this instance's own), and lists: `discovered` and `tree` show this
 * instance's part of the fleet, `devices` the whole fleet (the others' devices read from the shared
 * database, src/host/api/fleet-wide.ts).
 *
 * @example
 * const routed = routeToOwners(app, handlers); // no cluster: `handlers` itself
 * await routed.deviceInspect({ id: 'pump-7' }, {}); // answered by pump-7's owner, whichever it is
 */
import type { RoutedAnswer, RoutedKind, RoutedOp } from '../../cluster/command-router.js';
import type { App } from '../app.js';
import type { Method, Results } from '../contract.js';
import { shareForOwner } from './firmware.js';
import type { Handlers } from './handlers.js';
import { ApiFailure, callHandler } from './handlers.js';

/** The methods routed here: every operation kind but `act`, each the API method of the same name. */
type RoutedMethod = Exclude<RoutedKind, 'act'> & Method;

/** The router's own refusals in the API's words; the owner's answers are in them already. */
const ROUTER_CODES: Readonly<Record<string, string>> = {
  stopped: 'unavailable',
  badArgs: 'badRequest',
};

const actorOf = (context: { actor?: string }) =>
  context.actor !== undefined ? { actor: context.actor } : {};

/** The call of the API method an operation is, as the owner runs it. */
function callOf(op: RoutedOp<RoutedMethod>): { args: Record<string, unknown>; actor?: string } {
  return { args: argsOf(op), ...actorOf(op) };
}

function argsOf(op: RoutedOp<RoutedMethod>): Record<string, unknown> {
  switch (op.kind) {
    case 'cancelCommand':
      return { commandId: op.commandId };
    case 'sendEvent':
      return {
        id: op.deviceId,
        event: op.event,
        ...(op.payload !== undefined ? { payload: op.payload } : {}),
      };
    case 'firmwareUpdate':
      return {
        deviceId: op.deviceId,
        sha256: op.sha256,
        ...(op.trialMs !== undefined ? { trialMs: op.trialMs } : {}),
        ...(op.trialChecks !== undefined ? { trialChecks: op.trialChecks } : {}),
      };
    case 'firmwareCancel':
    case 'firmwareJobs':
      return { deviceId: op.deviceId };
    default:
      return { id: op.deviceId };
  }
}

/**
 * The handlers, with the routed methods sent to their device's owner when this instance is one of
 * a cluster; and, on this instance, the answers to the operations other instances ask of it, run
 * by the handlers as given (never routed again). Without a cluster: the handlers as given.
 */
export function routeToOwners(app: App, handlers: Handlers): Handlers {
  const cluster = app.cluster;
  if (!cluster) return handlers;
  const { keeper, router } = cluster;

  router.answerWith(async (op) => {
    const { args, actor } = callOf(op);
    // The API's answers are JSON by contract: they cross the WebSocket as such.
    return (await callHandler(
      handlers,
      app.runtime,
      op.kind,
      args,
      actor !== undefined ? { actor } : {},
    )) as RoutedAnswer;
  });

  async function onOwner<M extends RoutedMethod>(
    op: RoutedOp<M>,
    here: () => Promise<Results[M]>,
  ): Promise<Results[M]> {
    if (keeper.owns(op.deviceId)) return here();
    const r = await router.call(op);
    // The owner's answer to the same method.
    if (r.ok) return r.value as Results[M];
    throw new ApiFailure(ROUTER_CODES[r.error.code] ?? r.error.code, r.error.message);
  }

  return {
    ...handlers,
    device: (a, c) => onOwner({ kind: 'device', deviceId: a.id, ...actorOf(c) }, () => handlers.device(a, c)),
    deviceInspect: (a, c) =>
      onOwner({ kind: 'deviceInspect', deviceId: a.id, ...actorOf(c) }, () => handlers.deviceInspect(a, c)),
    sendEvent: (a, c) =>
      onOwner(
        {
          kind: 'sendEvent',
          deviceId: a.id,
          event: a.event,
          ...(a.payload !== undefined ? { payload: a.payload } : {}),
          ...actorOf(c),
        },
        () => handlers.sendEvent(a, c),
      ),
    restartDevice: (a, c) =>
      onOwner({ kind: 'restartDevice', deviceId: a.id, ...actorOf(c) }, () => handlers.restartDevice(a, c)),
    adopt: (a, c) => onOwner({ kind: 'adopt', deviceId: a.id, ...actorOf(c) }, () => handlers.adopt(a, c)),
    firmwareUpdate: async (a, c) => {
      // The owner imports the image from the shared table if it lacks it (src/host/api/firmware.ts).
      if (!keeper.owns(a.deviceId)) await shareForOwner(app, a.sha256);
      return onOwner(
        {
          kind: 'firmwareUpdate',
          deviceId: a.deviceId,
          sha256: a.sha256,
          ...(a.trialMs !== undefined ? { trialMs: a.trialMs } : {}),
          ...(a.trialChecks !== undefined ? { trialChecks: a.trialChecks } : {}),
          ...actorOf(c),
        },
        () => handlers.firmwareUpdate(a, c),
      );
    },
    firmwareCancel: (a, c) =>
      onOwner({ kind: 'firmwareCancel', deviceId: a.deviceId, ...actorOf(c) }, () =>
        handlers.firmwareCancel(a, c),
      ),
    // One device's job is its owner's; the list of every job stays this instance's own.
    firmwareJobs: (a, c) =>
      a.deviceId === undefined
        ? handlers.firmwareJobs(a, c)
        : onOwner({ kind: 'firmwareJobs', deviceId: a.deviceId, ...actorOf(c) }, () =>
            handlers.firmwareJobs(a, c),
          ),
    cancelCommand: async (a, c) => {
      let deviceId: string | undefined;
      try {
        deviceId = await router.deviceOfCommand(a.commandId);
      } catch (error) {
        throw new ApiFailure(
          'routingFailed',
          `cannot read which device command '${a.commandId}' is for: ${(error as Error).message}`,
        );
      }
      if (deviceId === undefined) return handlers.cancelCommand(a, c);
      return onOwner({ kind: 'cancelCommand', deviceId, commandId: a.commandId, ...actorOf(c) }, () =>
        handlers.cancelCommand(a, c),
      );
    },
  };
}
