/** The runtime's public surface: a hand-written export list. */
export type { Clock, SimulatedClock } from './clock.js';
export { createRealClock, createSimulatedClock, flushMicrotasks } from './clock.js';
export type { TimerInfo, TimerRef, TimerService } from './timers.js';
export { createTimerService } from './timers.js';
export type { EventStream, RuntimeEvent, RuntimeEventOf, RuntimeEventType } from './events.js';
export { createEventStream } from './events.js';
export type { ExitReason } from './exit-reason.js';
export { KILLED, NORMAL, SHUTDOWN, errorExit, formatExitReason, isCleanExit, shutdownWith } from './exit-reason.js';
export type { ExitListener, Pid, Process, ProcessKind, ProcessStatus, Shutdown } from './process.js';
export { ProcessBase, shutdownProcess } from './process.js';
export type { Logger, Runtime, RuntimeOptions } from './runtime.js';
export { createRuntime, silentLogger } from './runtime.js';
export type { Intensity, RestartDecision } from './restart-intensity.js';
export { addRestart, restartsInWindow } from './restart-intensity.js';
export type {
  AutoShutdown,
  ChildSpec,
  ChildType,
  FullChildSpec,
  RestartType,
  SpecError,
  SpecErrorCode,
  StartFn,
  StartResult,
  Strategy,
  SupervisorFlags,
} from './child-spec.js';
export { SUPERVISOR_DEFAULTS, validateChildSpec, validateChildSpecs, validateSupervisorFlags } from './child-spec.js';
export type {
  ChildCounts,
  ChildInfo,
  ChildStatus,
  NameRegistration,
  SupResult,
  SupervisorError,
  SupervisorErrorCode,
  SupervisorLike,
  SupervisorOptions,
} from './supervisor.js';
export { Supervisor, needsRestart, startSupervisor, supervisorChild } from './supervisor.js';
export type { DynamicChildSpec, DynamicSupervisorOptions } from './dynamic-supervisor.js';
export { DynamicSupervisor, startDynamicSupervisor } from './dynamic-supervisor.js';
export type { MachineProcessOptions, MachineTimer, PersistedMachineState, TimerKind } from './machine-process.js';
export { MachineProcess, formatStateValue, startMachine } from './machine-process.js';
