// The processes `npm run bench` starts (src/bench/main.ts): the simulator, the bare relay or the daemon, each
// printing {"url"} on stdout once listening and stopping on SIGTERM. Apart from main.js, so that a role's
// process (the daemon's RSS above all) holds only what that role loads.

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** Child roles: print {"url"} on stdout once listening, stop on SIGTERM. */
export async function runRole(role: string): Promise<void> {
  let close: () => Promise<void>;
  if (role === 'relay') {
    const { startBareRelay } = await import('./relay.js');
    const relay = await startBareRelay(flag('upstream', ''));
    process.stdout.write(`${JSON.stringify({ url: relay.url })}\n`);
    close = relay.close;
  } else if (role === 'sim') {
    const { startSimulator } = await import('../sim/server.js');
    const sim = await startSimulator({ port: 0, ttftMs: 0, tokensPerSecond: 0, accessLog: false });
    process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`);
    close = () => sim.close();
  } else {
    const { loadConfig } = await import('../core/config.js');
    const { startDaemon } = await import('./../daemon/server.js');
    const { config, paths } = loadConfig({
      flags: { daemon: { upstream: flag('upstream', '') }, store: { path: flag('db', '') || undefined } },
    });
    const daemon = await startDaemon({ config, paths, port: 0 });
    process.stdout.write(`${JSON.stringify({ url: daemon.url })}\n`);
    close = () => daemon.close('bench over');
  }
  await new Promise<void>((resolve) => process.once('SIGTERM', () => void close().then(resolve)));
}

runRole(flag('role', '')).catch((err: unknown) => {
  process.stderr.write(`bench role failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
