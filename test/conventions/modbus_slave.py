"""A Modbus RTU slave for the tests, on pymodbus 3.0.0rc1 (Debian's python3-pymodbus).

Serves one or more unit ids on a serial port (the device end of a socat pty pair), each with:

  holding 0        uint16 counter, +1 every --period seconds (wraps at 65536)
  holding 1        uint16 setpoint, 100 until written
  holding 2-3      float32 21.5 + unit id, high word first
  holding 4-5      uint32 70000 + unit id, high word first
  holding 6        int16 -5 (0xFFFB)
  holding 7-9      0; holding 20 and above do not exist (illegal data address)
  input 0          uint16 2300 + unit id (a voltage in tenths)
  coil 0           on; coil 1 off (writable)
  discrete 0       on

Commands, one per line on stdin: `silent <unit>` (stop answering that unit id), `talk <unit>`
(answer again), `set <unit> <address> <value>` (a holding register), `quit`. End of stdin quits
too, so the slave never outlives the test that started it. It prints `ready <path>` once the port
is open (again after every reopen: the port is reopened when it vanishes and comes back, as after
a USB replug) and `ok <command>` after each command.

Usage: /usr/bin/python3 test/conventions/modbus_slave.py <port> [--units 1,2] [--silent 2] [--period 0.2]

@example
    /usr/bin/python3 test/conventions/modbus_slave.py /tmp/bus-device --units 1,2 --silent 2
"""
import argparse
import asyncio
import logging
import struct
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncSerialServer
from pymodbus.transaction import ModbusRtuFramer


def words_f32(value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def unit_context(unit):
    hi, lo = divmod(70000 + unit, 65536)  # uint32, high word first
    holding = [0, 100] + words_f32(21.5 + unit) + [hi, lo] + [0xFFFB, 0, 0, 0] + [0] * 10
    return ModbusSlaveContext(
        hr=ModbusSequentialDataBlock(0, holding),
        ir=ModbusSequentialDataBlock(0, [2300 + unit] + [0] * 9),
        co=ModbusSequentialDataBlock(0, [True, False] + [False] * 8),
        di=ModbusSequentialDataBlock(0, [True] + [False] * 9),
        zero_mode=True,
    )


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port")
    parser.add_argument("--units", default="1")
    parser.add_argument("--silent", default="")
    parser.add_argument("--period", type=float, default=0.2)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL)
    logging.getLogger("pymodbus").setLevel(logging.DEBUG if args.debug else logging.CRITICAL)

    units = [int(u) for u in args.units.split(",") if u]
    contexts = {u: unit_context(u) for u in units}
    silent = {int(u) for u in args.silent.split(",") if u}
    context = ModbusServerContext(
        slaves={u: c for u, c in contexts.items() if u not in silent}, single=False
    )

    server = await StartAsyncSerialServer(
        context=context,
        framer=ModbusRtuFramer,
        port=args.port,
        baudrate=9600,
        ignore_missing_slaves=True,
        auto_reconnect=True,
        reconnect_delay=0.1,
        defer_start=True,
    )

    # Say `ready` whenever a connection to the port is made (first open and every reopen).
    handler_class = server.handler

    class Announcing(handler_class):
        def connection_made(self, transport):
            super().connection_made(transport)
            print(f"ready {args.port}", flush=True)

    server.handler = Announcing
    await server.start()

    async def tick():
        while True:
            await asyncio.sleep(args.period)
            for c in contexts.values():
                (value,) = c.getValues(3, 0, 1)
                c.setValues(3, 0, [(value + 1) % 65536])

    ticker = asyncio.create_task(tick())
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            break
        try:
            if words[0] == "silent":
                unit = int(words[1])
                if unit in context:
                    del context[unit]
            elif words[0] == "talk":
                unit = int(words[1])
                context[unit] = contexts[unit]
            elif words[0] == "set":
                unit, address, value = (int(w) for w in words[1:4])
                contexts[unit].setValues(3, address, [value % 65536])
            else:
                raise ValueError("unknown command")
            print(f"ok {line.strip()}", flush=True)
        except (ValueError, IndexError, KeyError) as exc:
            print(f"error {line.strip()}: {exc}", flush=True)
    ticker.cancel()
    await server.shutdown()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
