/**
 * `fleetvisor rollout …`: rollouts in waves from a terminal, through the app running on the data
 * folder (the commands live beside `fleetvisor update` in src/host/update-cli.ts).
 */
import { runRolloutCli } from './update-cli.js';

process.exitCode = await runRolloutCli(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
});
