/**
 * A device kind, declared once in the spirit of an Ash resource with an OTP behaviour: validated
 * attributes, an xstate v5 machine (states, events, `after` timeouts), actions that map validated
 * arguments to machine events, and spec (desired) vs status (reported) with a reconciler.
 * One declaration drives the runtime, the store and the UI's forms (schemas are zod, exported as
 * JSON Schema by {@link describeKind}).
 *
 * @example
 * const thermostat = defineDevice({
 *   kind: 'thermostat',
 *   attributes: z.object({ room: z.string() }),
 *   machine: thermostatMachine,
 *   actions: { setPoint: { args: z.object({ celsius: z.number().min(5).max(30) }), toEvent: (a) => ({ type: 'SET', ...a }) } },
 * });
 */
import type { AnyStateMachine, EventObject } from 'xstate';
import { z } from 'zod';
import type { JsonObject } from '../store/store.js';
import type { GuardSettings } from './command-guards.js';
import { resolveGuardSettings } from './command-guards.js';

/**
 * An operator action: either an event for the device's machine (`toEvent`: connect, update …),
 * or a command sent to the device over its link (`command`: reboot, identify …), which waits in
 * the command outbox while the device is offline. Exactly one of the two.
 */
export interface ActionDef {
  /** Validates (and may default) the arguments; invalid arguments never reach the machine. */
  readonly args: z.ZodType;
  /** The machine event the validated arguments become (it receives the parsed arguments). */
  readonly toEvent?: (args: never) => EventObject;
  /** The protocol command (docs/protocol.md §4) the validated arguments are sent with. */
  readonly command?: string;
  readonly description?: string;
  /** The UI asks for confirmation first. */
  readonly destructive?: boolean;
}

/** What an action turns into once its arguments are valid. */
export type BuiltAction =
  | { readonly type: 'event'; readonly event: EventObject }
  | { readonly type: 'command'; readonly command: string; readonly args: JsonObject };

/** What a reconciler found for one device: a difference, and what to do about it. */
export interface Drift {
  /** Stable code, e.g. `firmware`, `config.reportingIntervalMs`. */
  readonly field: string;
  readonly desired: unknown;
  readonly reported: unknown;
  /** The corrective action, if the kind has one. */
  readonly action?: { readonly name: string; readonly args: unknown };
}

export interface ReconcileInput {
  readonly spec: JsonObject;
  readonly status: JsonObject;
  /** The machine state, e.g. `connected`. */
  readonly state: string;
}

/**
 * Functions taking the attributes are declared as methods on purpose: method parameters are
 * checked bivariantly, so a fleet can hold kinds with different attribute types as `DeviceKind`.
 */
export interface DeviceKindDef<TMachine extends AnyStateMachine, TAttrs> {
  /** Kind name, stored with each device; `[a-z0-9.-]+`. */
  readonly kind: string;
  readonly title?: string;
  /**
   * The convention its devices speak (`homie`, `sparkplug`, `modbus`), shown with each device;
   * omitted: Fleetvisor's own protocol.
   */
  readonly convention?: string;
  readonly attributes: z.ZodType<TAttrs>;
  readonly machine: TMachine;
  /** Machine input made from the validated attributes (timeouts, etc.). */
  input?(attributes: TAttrs): unknown;
  readonly actions: { readonly [name: string]: ActionDef };
  /** Shape of the desired state the operator sets (an object). */
  readonly spec?: z.ZodType;
  /** Compares spec with status: each difference, with its corrective action. */
  reconcile?(input: ReconcileInput): Drift[];
  /**
   * Liveness: in these states a named timeout runs that every heartbeat or telemetry pushes back
   * (data never goes through the machine); when it fires, `event` arrives.
   */
  readonly liveness?: {
    readonly states: readonly string[];
    timeoutMs(attributes: TAttrs): number;
    readonly event: EventObject;
  };
  /** A device held in one of these states longer than the given ms is reported stuck. */
  readonly stuckAfterMs?: { readonly [state: string]: number };
  /** Idle devices drop their actor after this long (gen_statem hibernate). Off by default. */
  readonly hibernateAfterMs?: number;
  /** Snapshot format version; a stored snapshot of another version is refused (device failed). */
  readonly snapshotVersion?: number;
  /**
   * The largest firmware image a device of this kind takes into its inactive slot
   * (docs/protocol.md §5), in bytes; an import of a bigger image is refused. Omitted: the kind has
   * no firmware channel (its devices cannot be updated by Fleetvisor).
   */
  readonly firmwareSlotBytes?: number;
  /**
   * Guards on its devices' commands (src/devices/command-guards.ts): the circuit breaker (default
   * 5 failures in a row, 30 000 ms cool-down) and the per-device rate limit (default 5 a second,
   * burst 10). E.g. `guards: { breaker: { failures: 3 }, rate: { perSecond: 1, burst: 2 } }`.
   */
  readonly guards?: GuardSettings;
}

export interface DeviceKind<TMachine extends AnyStateMachine = AnyStateMachine, TAttrs = unknown>
  extends DeviceKindDef<TMachine, TAttrs> {
  readonly snapshotVersion: number;
  /** Validates attributes: the parsed value, or a message naming the field. */
  parseAttributes(value: unknown): { ok: true; value: TAttrs } | { ok: false; message: string };
  /** Validates an action's arguments and builds its machine event or device command. */
  buildAction(
    action: string,
    args: unknown,
  ): { ok: true; value: BuiltAction } | { ok: false; code: 'unknownAction' | 'badArgs'; message: string };
}

const KIND_NAME = /^[a-z0-9][a-z0-9.-]{0,63}$/;

/** Formats a zod error as one line naming each bad field. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(value)'}: ${i.message}`)
    .join('; ');
}

/** Declares a device kind; throws on a malformed declaration (misuse, at the boundary). */
export function defineDevice<TMachine extends AnyStateMachine, TAttrs>(
  def: DeviceKindDef<TMachine, TAttrs>,
): DeviceKind<TMachine, TAttrs> {
  if (!KIND_NAME.test(def.kind)) throw new Error(`defineDevice: kind '${def.kind}' must match ${KIND_NAME}`);
  for (const [name, a] of Object.entries(def.actions)) {
    if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(name))
      throw new Error(`defineDevice(${def.kind}): action name '${name}' must be alphanumeric`);
    if ((a.toEvent === undefined) === (a.command === undefined))
      throw new Error(`defineDevice(${def.kind}): action '${name}' needs exactly one of toEvent and command`);
  }
  const slot = def.firmwareSlotBytes;
  if (slot !== undefined && !(Number.isSafeInteger(slot) && slot > 0))
    throw new Error(`defineDevice(${def.kind}): firmwareSlotBytes must be a positive integer, got ${slot}`);
  resolveGuardSettings(`defineDevice(${def.kind}): guards`, def.guards);
  return {
    ...def,
    snapshotVersion: def.snapshotVersion ?? 1,
    parseAttributes(value) {
      const r = def.attributes.safeParse(value);
      return r.success ? { ok: true, value: r.data } : { ok: false, message: formatIssues(r.error) };
    },
    buildAction(action, args) {
      const a = Object.hasOwn(def.actions, action) ? def.actions[action] : undefined;
      if (!a)
        return {
          ok: false,
          code: 'unknownAction',
          message: `kind ${def.kind} has no action '${action}' (actions: ${Object.keys(def.actions).join(', ')})`,
        };
      const r = a.args.safeParse(args ?? {});
      if (!r.success) return { ok: false, code: 'badArgs', message: `${action}: ${formatIssues(r.error)}` };
      if (a.command !== undefined)
        return {
          ok: true,
          value: { type: 'command', command: a.command, args: (r.data ?? {}) as JsonObject },
        };
      return {
        ok: true,
        value: { type: 'event', event: (a.toEvent as (x: unknown) => EventObject)(r.data) },
      };
    },
  };
}

/** A kind as plain data for the UI: its actions' argument forms as JSON Schema. */
export function describeKind(kind: DeviceKind): {
  kind: string;
  title: string;
  actions: {
    name: string;
    description: string;
    destructive: boolean;
    /** `command`: sent to the device (waits while it is offline); `event`: handled by its machine. */
    target: 'command' | 'event';
    argsSchema: unknown;
  }[];
  attributesSchema: unknown;
} {
  return {
    kind: kind.kind,
    title: kind.title ?? kind.kind,
    attributesSchema: z.toJSONSchema(kind.attributes as z.ZodType, { io: 'input' }),
    actions: Object.entries(kind.actions).map(([name, a]) => ({
      name,
      description: a.description ?? '',
      destructive: a.destructive ?? false,
      target: a.command !== undefined ? ('command' as const) : ('event' as const),
      argsSchema: z.toJSONSchema(a.args, { io: 'input' }),
    })),
  };
}
