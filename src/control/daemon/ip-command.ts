// `ip` (iproute2) run synchronously for the control thread's link and route work (workload TAPs, the
// host TAP): its stdout, or a DeviceError `ip-command` naming the command and iproute2's own reason.
import { execFileSync } from 'node:child_process';
import { DeviceError } from '../../common/errors.js';

export function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new DeviceError('ip-command', `ip ${args.join(' ')}: ${(err.stderr ?? err.message).trim()}`);
  }
}
