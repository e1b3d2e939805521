/**
 * What each method answers (inside its `Envelope`), one entry per method of `METHODS`.
 */

import type { AlarmCounts, AlarmRuleView, AlarmView } from './alarms.js';
import type { ClusterInfo } from './cluster.js';
import type { ActionView, ActResult, CommandView } from './commands.js';
import type { DeviceDetail, DeviceInspection, DeviceRow, ImportRowResult } from './devices.js';
import type { AdoptBulkView, DiscoveredView } from './discovery.js';
import type { ApiError, Json, Page } from './envelope.js';
import type { FirmwareImageView, FirmwareJobView, RolloutView } from './firmware.js';
import type { ProcessInfo, TreeNode } from './processes.js';
import type { Bucket, EventView, HealthItem, SettingsView, SystemStats } from './system.js';

export interface Results {
  tree: TreeNode;
  devices: Page<DeviceRow>;
  device: DeviceDetail;
  deviceInspect: DeviceInspection;
  /** `crashed`: the machine crashed on it (its supervisor restarts it); `state`: where it is now. */
  sendEvent: {
    readonly from: string;
    readonly to: string;
    readonly state: string;
    readonly crashed: boolean;
  };
  telemetry: readonly Bucket[];
  events: Page<EventView>;
  commands: Page<CommandView>;
  health: readonly HealthItem[];
  stats: SystemStats;
  kinds: readonly {
    readonly kind: string;
    readonly title: string;
    /** JSON Schema of the attributes (input side: defaults optional), for the add form. */
    readonly attributesSchema?: Json;
    readonly actions: readonly ActionView[];
  }[];
  discovered: readonly DiscoveredView[];
  act: readonly ActResult[];
  restartDevice: DeviceRow;
  killProcess: { readonly killed: number };
  restartChild: { readonly pid: number | null };
  terminateChild: { readonly terminated: string };
  processInfo: ProcessInfo;
  adopt: DeviceRow;
  adoptBulk: AdoptBulkView;
  adoptBulkStatus: AdoptBulkView | null;
  adoptBulkCancel: AdoptBulkView;
  cancelCommand: { readonly cancelled: boolean };
  setDemo: { readonly on: boolean };
  firmwareList: {
    readonly images: readonly FirmwareImageView[];
    /** Rows that do not parse, with why. */
    readonly unreadable: readonly ApiError[];
  };
  /** `created: false`: these bytes, version and kinds were stored already (no error, nothing changed). */
  firmwareImport: { readonly image: FirmwareImageView; readonly created: boolean };
  firmwareUpdate: FirmwareJobView;
  firmwareJobs: readonly FirmwareJobView[];
  firmwareCancel: FirmwareJobView;
  rolloutCreate: RolloutView;
  rollouts: readonly RolloutView[];
  rolloutPause: RolloutView;
  rolloutResume: RolloutView;
  rolloutCancel: RolloutView;
  rolloutDelete: { readonly deleted: string };
  /** `null`: this instance runs alone (no --cluster). */
  cluster: ClusterInfo | null;
  settings: SettingsView;
  settingsSave: SettingsView;
  /** `read`: what the test read found (with `test: true`); a failed read refuses the add (`testReadFailed`). */
  deviceAdd: {
    readonly device: DeviceRow;
    readonly read: { readonly values: Record<string, number> } | null;
  };
  deviceEdit: {
    readonly device: DeviceRow;
    readonly changed: readonly string[];
    readonly restarted: boolean;
  };
  deviceRemove: {
    readonly id: string;
    /** What `purge` deleted; null: the history is kept. */
    readonly purged: {
      readonly telemetry: number;
      readonly events: number;
      readonly commands: number;
    } | null;
    readonly brokerAccountRevoked: boolean;
  };
  modbusTestRead: { readonly values: Record<string, number> };
  devicesExport: { readonly format: 'json' | 'csv'; readonly count: number; readonly text: string };
  devicesImport: {
    readonly results: readonly ImportRowResult[];
    readonly added: number;
    readonly updated: number;
    readonly unchanged: number;
    readonly failed: number;
  };
  alarms: {
    readonly items: readonly AlarmView[];
    /** Pass as `cursor` for the next page; null at the end. */
    readonly next: number | null;
    readonly counts: AlarmCounts;
  };
  alarmAck: AlarmView;
  alarmShelve: AlarmView;
  alarmRules: readonly AlarmRuleView[];
  alarmRuleSet: AlarmRuleView;
  alarmRuleDelete: { readonly deleted: string };
  /** Each device's latest value, heard or stored (a restarted host has them at once); `values` empty without `metric`. */
  latestValues: {
    readonly metrics: readonly string[];
    readonly values: readonly { readonly id: string; readonly at: number; readonly value: number }[];
  };
}
