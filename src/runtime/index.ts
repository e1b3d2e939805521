/** The runtime's public surface: a hand-written export list. */

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
export {
  SUPERVISOR_DEFAULTS,
  validateChildSpec,
  validateChildSpecs,
  validateSupervisorFlags,
} from './child-spec.js';
export type { Clock, SimulatedClock } from './clock.js';
export { createRealClock, createSimulatedClock, flushMicrotasks } from './clock.js';
export type { DynamicChildSpec, DynamicSupervisorOptions } from './dynamic-supervisor.js';
export { DynamicSupervisor, startDynamicSupervisor } from './dynamic-supervisor.js';
export type {
  AddHandlerResult,
  EventHandler,
  EventManagerOptions,
  RemoveHandlerResult,
  SyncNotifyResult,
} from './event-manager.js';
export { EventManagerProcess, startEventManager } from './event-manager.js';
export type { EventStream, RuntimeEvent, RuntimeEventOf, RuntimeEventType } from './events.js';
export { createEventStream } from './events.js';
export type { ExitReason } from './exit-reason.js';
export {
  errorExit,
  formatExitReason,
  isCleanExit,
  isGaveUp,
  KILLED,
  NORMAL,
  REACHED_MAX_RESTART_INTENSITY,
  SHUTDOWN,
  shutdownWith,
} from './exit-reason.js';
export type {
  HealthCheck,
  HealthCheckResult,
  HealthLevel,
  HealthRegistry,
  HealthReport,
  HealthStatus,
} from './health.js';
export { createHealthRegistry, isHealthStatus, worstHealth } from './health.js';
export type {
  MachineConfig,
  MachineStartOptions,
  MachineTimer,
  PersistedMachineState,
  TimerKind,
} from './machine-process.js';
export { formatStateValue, MachineProcess, startMachine } from './machine-process.js';
export type { ExitListener, Pid, Process, ProcessKind, ProcessStatus, Shutdown } from './process.js';
export { ProcessBase, shutdownProcess } from './process.js';
export type {
  RegisterError,
  RegisterResult,
  Registry,
  RegistryEntry,
  RegistryKeys,
  RegistryOptions,
  ViaName,
} from './registry.js';
export { createRegistry, viaName } from './registry.js';
export type { Intensity, RestartDecision } from './restart-intensity.js';
export { addRestart, restartsInWindow } from './restart-intensity.js';
export type { Logger, Runtime, RuntimeOptions } from './runtime.js';
export { createRuntime, silentLogger } from './runtime.js';
export type { CallError, CallErrorCode, CallResult, CallReturn, ServerSpec } from './server.js';
export { DEFAULT_CALL_TIMEOUT_MS, ServerProcess, startServer } from './server.js';
export { serviceSupervisor } from './service-supervisor.js';
export type {
  ChildCounts,
  ChildInfo,
  ChildStatus,
  NameRegistration,
  SupervisorError,
  SupervisorErrorCode,
  SupervisorLike,
  SupervisorOptions,
  SupResult,
} from './supervisor.js';
export { needsRestart, Supervisor, startSupervisor, supervisorChild } from './supervisor.js';
export type {
  AsyncStreamOptions,
  StartTaskResult,
  TaskError,
  TaskErrorCode,
  TaskFn,
  TaskHandle,
  TaskOptions,
  TaskResult,
  TaskSupervisorOptions,
} from './task-supervisor.js';
export { startTaskSupervisor, TaskProcess, TaskSupervisorProcess } from './task-supervisor.js';
export type { TimerInfo, TimerRef, TimerService } from './timers.js';
export { createTimerService } from './timers.js';
