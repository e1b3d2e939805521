/**
 * The renderer's export in the desktop shell: the preload's `exportToFile` gets the same query
 * the headless server's `GET /api/export/<kind>` would, and its answers come back in the one
 * shape the Export buttons show (a cancelled save dialog says so; no download link is made).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { downloadExport, exportAvailable, exportPath } from '../../../renderer/src/lib/export-download.js';

type Answer =
  | { ok: true; path: string; fileName: string; bytes: number }
  | { ok: false; code: string; message: string };

const g = globalThis as { window?: unknown };

function desktop(answer: Answer) {
  const asked: [string, string][] = [];
  g.window = {
    fleetvisor: {
      subscribe: () => () => {},
      exportToFile: async (kind: string, query: string) => {
        asked.push([kind, query]);
        return answer;
      },
    },
  };
  return asked;
}

afterEach(() => {
  delete g.window;
});

describe('export in the desktop shell', () => {
  it('is offered, and asks the preload with the same query as the server download', async () => {
    const asked = desktop({ ok: true, path: '/home/ann/e.csv', fileName: 'e.csv', bytes: 42 });
    expect(exportAvailable()).toBe(true);
    const params = { device: ['pump-7', 'valve 2'], from: '1000', kind: '', format: 'csv' };
    expect(await downloadExport('events', params)).toEqual({ ok: true, fileName: 'e.csv', bytes: 42 });
    expect(asked).toEqual([['events', exportPath('events', params).split('?')[1]]]);
    expect(asked[0]![1]).toBe('device=pump-7&device=valve+2&from=1000&format=csv');
  });

  it('says a cancelled dialog saved nothing, and passes a refusal on', async () => {
    desktop({ ok: false, code: 'cancelled', message: 'no file chosen' });
    expect(await downloadExport('events', {})).toEqual({ ok: false, message: 'not saved: no file chosen' });
    desktop({ ok: false, code: 'badRequest', message: "unknown parameter 'devcie' for events" });
    expect(await downloadExport('events', {})).toEqual({
      ok: false,
      message: "unknown parameter 'devcie' for events",
    });
  });

  it('is not offered by a preload without exportToFile (an older shell)', () => {
    g.window = { fleetvisor: { subscribe: () => () => {} } };
    expect(exportAvailable()).toBe(false);
  });
});
