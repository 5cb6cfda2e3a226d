// Three calitap speakers as route-reflector clients of GoBGP (in a namespace this test creates):
// each learns the others' blocks with the original next hop; withdrawals propagate.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIp4, formatPrefix4 } from '../../src/common/addr.js';
import { BgpSpeaker } from '../../src/control/bgp/speaker.js';
import { gobgpConf } from '../../bench/bgp-lab.js';
import { have, isRoot, Lab } from '../../bench/bgp-lab.js';
import { waitUntil } from './rawpeer.js';

const ok = isRoot && have('gobgpd') && have('gobgp');
const why = !isRoot ? 'requires root' : 'requires root and gobgpd';

describe.skipIf(!ok)(
  `bgp interop: calitap as clients of a GoBGP route reflector (${why}, network namespaces)`,
  () => {
    let lab: Lab;
    let gobgpd: ChildProcess;
    let sock: string;
    const speakers: BgpSpeaker[] = [];
    const hosts = [1, 3, 4];

    const gobgp = (...args: string[]) => lab.exec('gobgp', ['--target', `unix://${sock}`, ...args]);
    const learned = (s: BgpSpeaker) =>
      Object.fromEntries([...s.routes()].map((r) => [formatPrefix4(r.prefix), formatIp4(r.nextHop)]));

    beforeAll(async () => {
      lab = Lab.create('g');
      lab.addRootAddress(3);
      lab.addRootAddress(4);
      sock = path.join(lab.dir, 'gobgp.sock');
      const conf = lab.writeFile(
        'gobgpd.toml',
        gobgpConf({ routerId: lab.ip(2), localAs: 64512, clients: hosts.map((h) => lab.ip(h)) }),
      );
      gobgpd = lab.spawn('gobgpd', 'gobgpd', [
        '-f',
        conf,
        '--api-hosts',
        `unix://${sock}`,
        '--pprof-disable',
        '-p',
      ]);
      await waitUntil(
        () => {
          try {
            gobgp('global');
            return true;
          } catch {
            return false;
          }
        },
        15_000,
        'gobgpd API socket',
      );
    });

    afterAll(async () => {
      await Promise.all(speakers.map((s) => s.abort()));
      if (lab) {
        if (process.env.CALITAP_TEST_LOGS) console.log(lab.log('gobgpd'));
        await lab.kill(gobgpd);
        await lab.destroy();
      }
    });

    it('each client learns the others’ blocks with the original next hop, ORIGINATOR_ID and CLUSTER_LIST', async () => {
      hosts.forEach((h, i) => {
        const s = new BgpSpeaker({
          routerId: lab.ip(h),
          localAs: 64512,
          listenAddress: lab.ip(h),
          holdTime: 9,
          connectRetry: 1,
          idleHoldTime: 0.5,
          peers: [{ peerAddress: lab.ip(2), asNumber: 64512, peerType: 'global' }],
        });
        s.originate(`10.65.${i}.0/26`);
        speakers.push(s);
      });
      await Promise.all(speakers.map((s) => s.start()));
      await waitUntil(() => speakers.every((s) => s.status()[0].state === 'up'), 30_000, 'sessions up');
      await waitUntil(() => speakers.every((s) => s.routeCount === 2), 15_000, 'reflected routes');
      expect(learned(speakers[0])).toEqual({ '10.65.1.0/26': lab.ip(3), '10.65.2.0/26': lab.ip(4) });
      expect(learned(speakers[1])).toEqual({ '10.65.0.0/26': lab.ip(1), '10.65.2.0/26': lab.ip(4) });
      const r = speakers[0].lookup('10.65.1.0/26')!;
      expect(formatIp4(r.attrs.originatorId!)).toBe(lab.ip(3));
      expect(r.attrs.clusterList?.map(formatIp4)).toEqual([lab.ip(2)]);
      expect(r.attrs.localPref).toBe(100);
      const rib = gobgp('global', 'rib');
      for (let i = 0; i < 3; i++) expect(rib).toContain(`10.65.${i}.0/26`);
    });

    it('a withdrawal propagates through the reflector', async () => {
      speakers[2].withdraw('10.65.2.0/26');
      await waitUntil(
        () => speakers[0].routeCount === 1 && speakers[1].routeCount === 1,
        15_000,
        'withdrawal reflected',
      );
      expect(speakers[0].lookup('10.65.2.0/26')).toBeNull();
      expect(gobgp('global', 'rib')).not.toContain('10.65.2.0/26');
    });

    it('a client that shuts down (Cease) has its routes withdrawn from the others', async () => {
      await speakers[1].stop();
      await waitUntil(() => speakers[0].routeCount === 0, 15_000, 'routes of the stopped client gone');
      expect(gobgp('neighbor')).toMatch(
        new RegExp(`${lab.ip(3).replace(/\./g, '\\.')}\\s.*(Active|Idle|Connect)`),
      );
    });
  },
);
