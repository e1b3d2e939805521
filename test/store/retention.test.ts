/**
 * Retention's flags. What a pass deletes is part of the Store contract (test/store/contract-retention.ts),
 * run on every engine from its store test file.
 */
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/host/main.js';

describe('retention', () => {
  it('is set from the command line: --retention-days for all, --telemetry-retention-days for telemetry', () => {
    const parsed = parseCommandLine(
      ['--retention-days', '365', '--telemetry-retention-days', '30', '--no-demo'],
      {},
    );
    if (parsed.help) throw new Error('help');
    expect(parsed.options.retention).toEqual({ telemetry: 30, events: 365, commands: 365 });
    const all = parseCommandLine(['--retention-days=90', '--no-demo'], {});
    if (!all.help) expect(all.options.retention).toEqual({ telemetry: 90, events: 90, commands: 90 });
    const none = parseCommandLine(['--no-demo'], {});
    if (!none.help) expect(none.options.retention).toBeUndefined();
    expect(() => parseCommandLine(['--retention-days', '0'], {})).toThrow(
      /--retention-days must be a number of days over 0/,
    );
  });
});
