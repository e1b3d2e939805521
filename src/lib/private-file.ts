/**
 * A file readable by the user alone, written whole: a temporary file (mode 0600) renamed over the
 * old one, so a reader never sees half of it and nobody else can read it at any moment.
 *
 * @example
 * writePrivateFile(join(dataDir, 'settings.json'), JSON.stringify(values));
 */
import { chmodSync, renameSync, writeFileSync } from 'node:fs';

export function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600); // an existing temporary file keeps its mode through writeFileSync
  renameSync(tmp, file);
}
