/**
 * A real Homie 3.0.1 device for the Homie convention's tests: the npm `homie-device` library in a
 * process of its own, so a test can SIGKILL it and let the broker publish its `lost` will.
 *
 * Speaks JSON lines: stdout reports (`{"event":"connect"}`, `{"event":"set",…}`), stdin takes
 * orders (`{"cmd":"send","node":"sensor","property":"temperature","value":"21.5"}`,
 * `{"cmd":"end"}` for a clean goodbye).
 *
 * homie-device has no keepalive option: its `mqtt.connect` is wrapped to set a short keepalive (so a
 * half-open connection is noticed within seconds too) and a quick reconnect.
 *
 * @example
 * node test/conventions/homie-peer.cjs '{"host":"127.0.0.1","port":1883,"id":"peer-1","base":"homie/","keepalive":2}'
 */
'use strict';
const path = require('node:path');
const readline = require('node:readline');

const config = JSON.parse(process.argv[2] || '{}');
const mqttPath = require.resolve('mqtt', { paths: [path.dirname(require.resolve('homie-device'))] });
const mqtt = require(mqttPath);
const connect = mqtt.connect;
mqtt.connect = (url, options) =>
  connect(url, {
    ...options,
    keepalive: config.keepalive ?? 2,
    reconnectPeriod: config.reconnectMs ?? 300,
    // A broker account (`fleetvisor broker device add ID --convention homie`), when given.
    ...(config.username ? { username: config.username, password: config.password } : {}),
  });

const HomieDevice = require('homie-device');

const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const device = new HomieDevice({
  name: 'Test peer',
  device_id: config.id,
  mqtt: { host: config.host, port: config.port, base_topic: config.base ?? 'homie/', auth: false },
});
device.setFirmware('homie-peer', config.firmware ?? '1.2.3');

const sensor = device.node('sensor', 'Sensor', 'sensor');
const echo = (property) => (_range, value) => {
  say({ event: 'set', node: 'sensor', property, value });
  sensor.setProperty(property).setRetained(true).send(value);
};
sensor.advertise('temperature').setName('Temperature').setUnit('°C').setDatatype('float');
sensor.advertise('count').setName('Count').setDatatype('integer').setFormat('0:100').settable(echo('count'));
sensor.advertise('enabled').setName('Enabled').setDatatype('boolean').settable(echo('enabled'));
sensor
  .advertise('mode')
  .setName('Mode')
  .setDatatype('enum')
  .setFormat('eco,comfort,off')
  .settable(echo('mode'));
sensor.advertise('label').setName('Label').setDatatype('string').settable(echo('label'));
// Settable, but never answers: the host's set times out.
sensor
  .advertise('silent')
  .setName('Silent')
  .setDatatype('integer')
  .settable((_range, value) => say({ event: 'set', node: 'sensor', property: 'silent', value }));

device.on('connect', () => {
  sensor
    .setProperty('temperature')
    .setRetained(true)
    .send(String(config.temperature ?? 20.5));
  sensor.setProperty('count').setRetained(true).send('1');
  sensor.setProperty('mode').setRetained(true).send('eco');
  say({ event: 'connect' });
});
device.on('disconnect', () => say({ event: 'disconnect' }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let order;
  try {
    order = JSON.parse(line);
  } catch {
    return;
  }
  if (order.cmd === 'send') sensor.setProperty(order.property).setRetained(true).send(String(order.value));
  else if (order.cmd === 'end') {
    device.end();
    setTimeout(() => process.exit(0), 200);
  }
});

device.setup(true);
