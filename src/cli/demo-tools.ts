// The system tools the live demo runs (ip, ping, iperf3) and how it gets them: the same installer
// `npm test` uses (scripts/ensure-system-deps.sh: installs what is missing as root), then a second
// look; anything still missing stops the demo with one line naming it, before any output. The probe
// and the installer are injectable so tests run without root or apt. Main thread, once per demo.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import * as path from 'node:path';
import { DeviceError } from '../common/errors.js';

export interface DemoTool {
  /** the command the demo runs */
  cmd: string;
  /** the Debian package that has it (what scripts/ensure-system-deps.sh installs) */
  pkg: string;
}

/** Every command the live demo runs, with the package that provides it. */
export const DEMO_TOOLS: readonly DemoTool[] = [
  { cmd: 'ip', pkg: 'iproute2' },
  { cmd: 'ping', pkg: 'iputils-ping' },
  { cmd: 'iperf3', pkg: 'iperf3' },
];

/** True when `cmd` is an executable file on $PATH. */
export function onPath(cmd: string, envPath = process.env.PATH ?? ''): boolean {
  for (const dir of envPath.split(path.delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(path.join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

/** Runs the installer script; returns its exit status (it prints its own progress on stderr). */
export type Installer = (script: string) => number | null;

const runInstaller: Installer = (script) =>
  spawnSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'] }).status;

export interface EnsureToolsOptions {
  /** repo root: the installer is `<root>/scripts/ensure-system-deps.sh` */
  root: string;
  probe?: (cmd: string) => boolean;
  install?: Installer;
  tools?: readonly DemoTool[];
}

/**
 * Makes sure every demo tool is there, installing the missing ones with the project's installer.
 * Throws DeviceError `tools-missing` (one line, naming each missing command and its package) when
 * some are still missing. Returns the tools it had to install (empty when all were there).
 */
export function ensureDemoTools(o: EnsureToolsOptions): DemoTool[] {
  const probe = o.probe ?? ((cmd: string) => onPath(cmd));
  const tools = o.tools ?? DEMO_TOOLS;
  const missing = tools.filter((t) => !probe(t.cmd));
  if (missing.length === 0) return [];
  const script = path.join(o.root, 'scripts', 'ensure-system-deps.sh');
  if (existsSync(script)) (o.install ?? runInstaller)(script);
  const still = missing.filter((t) => !probe(t.cmd));
  if (still.length > 0) {
    const names = still.map((t) => `${t.cmd} (package ${t.pkg})`).join(', ');
    throw new DeviceError(
      'tools-missing',
      `live demo: ${names} not installed and ${existsSync(script) ? `${script} could not install it` : `${script} is missing`}; install it, or run \`calitap demo --replay\``,
    );
  }
  return missing;
}
