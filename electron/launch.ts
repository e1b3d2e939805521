/**
 * Small pure pieces of the shell's start-up (no `electron` import): which command-line
 * arguments are the app's, who the operator is, and the Electron fuses the packaged app must
 * have flipped (checklist item 19).
 *
 * @example
 * parseCommandLine(appArgs(process.argv, process.defaultApp === true), process.env);
 * createIpcHandlers({ …, actor: operatorName(() => os.userInfo()) });
 */

/**
 * The app's own arguments: after `electron .` (or `electron path/to/main.mjs`) in development,
 * after the executable in a packaged app. macOS's `-psn_…` process serial number (added when
 * launched from the Finder on old systems) is dropped.
 */
export function appArgs(argv: readonly string[], defaultApp: boolean): string[] {
  return argv.slice(defaultApp ? 2 : 1).filter((a) => !a.startsWith('-psn_'));
}

/** The audit log's actor: the OS user (at most 64 characters), or `operator` if unknown. */
export function operatorName(userInfo: () => { readonly username: string }): string {
  let name = '';
  try {
    name = userInfo().username.trim();
  } catch {
    // no passwd entry for this uid (containers)
  }
  return (name || 'operator').slice(0, 64);
}

/**
 * Electron fuses for the packaged app, named as `@electron/fuses`' `FuseV1Options` (give them to
 * `flipFuses(electronBinary, { version: FuseVersion.V1, resetAdHocDarwinSignature: true, … })`,
 * or to the packager's fuses option). Not flipped in development: they change the binary.
 */
export const FUSES = Object.freeze({
  RunAsNode: false,
  EnableNodeOptionsEnvironmentVariable: false,
  EnableNodeCliInspectArguments: false,
  EnableEmbeddedAsarIntegrityValidation: true,
  OnlyLoadAppFromAsar: true,
  EnableCookieEncryption: true,
  GrantFileProtocolExtraPrivileges: false,
} as const);

/** Longest wait for the runtime to stop at quit before the process exits anyway. */
export const STOP_TIMEOUT_MS = 15_000;
