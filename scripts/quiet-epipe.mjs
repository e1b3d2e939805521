// Preloaded into the command-line tools (scripts/fleetvisor.mjs): output piped into a reader that
// stops early (`fleetvisor devices ls | head`) ends the tool quietly, as Unix tools do, instead of
// an unhandled EPIPE with its stack trace.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
