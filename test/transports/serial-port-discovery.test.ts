/**
 * Unit tests of the listing filter of the serial manager's presence poll (wantedPorts): which
 * listed ports are kept, in what order, and what a throwing filter costs. No ports are opened.
 */
import { describe, expect, it } from 'vitest';
import type { PortInfo } from '../../src/transports/serial-port-discovery.js';
import { isUsbPort, wantedPorts } from '../../src/transports/serial-port-discovery.js';

function info(path: string, vendorId?: string): PortInfo {
  return {
    path,
    manufacturer: undefined,
    serialNumber: undefined,
    pnpId: undefined,
    locationId: undefined,
    productId: undefined,
    vendorId,
  } as PortInfo;
}

describe('wantedPorts', () => {
  it('keeps the listed ports the filter wants, in listing order, once each', () => {
    const infos = [
      info('/dev/ttyS0'),
      info('/dev/ttyUSB1'),
      info('/dev/ttyAMA0', '0403'),
      info('/dev/ttyUSB1'),
    ];
    expect([...wantedPorts(infos, isUsbPort, () => {})]).toEqual(['/dev/ttyUSB1', '/dev/ttyAMA0']);
  });

  it('skips entries without a path, without asking the filter', () => {
    const asked: string[] = [];
    const infos = [info(''), { vendorId: '0403' } as unknown as PortInfo, info('/dev/ttyACM0')];
    const kept = wantedPorts(
      infos,
      (i) => {
        asked.push(i.path);
        return true;
      },
      () => {},
    );
    expect([...kept]).toEqual(['/dev/ttyACM0']);
    expect(asked).toEqual(['/dev/ttyACM0']);
  });

  it('reports a throwing filter and leaves that port out; the others are still kept', () => {
    const errors: unknown[] = [];
    const boom = new Error('boom');
    const kept = wantedPorts(
      [info('/dev/ttyUSB0'), info('/dev/ttyUSB1')],
      (i) => {
        if (i.path === '/dev/ttyUSB0') throw boom;
        return true;
      },
      (error) => errors.push(error),
    );
    expect([...kept]).toEqual(['/dev/ttyUSB1']);
    expect(errors).toEqual([boom]);
  });
});
