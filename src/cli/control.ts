// CLI commands that talk to a running daemon over its control socket: status, routes, stats,
// workload add|del|list. Text output mirrors calicoctl where there is a calicoctl equivalent.
import { callApi } from '../control/daemon/api.js';
import type { PeerStatusRow } from '../control/daemon/bgp-host.js';
import type { RouteRow } from '../control/daemon/program.js';
import type { StatsView } from '../control/daemon/stats.js';

function table(headers: string[], rows: string[][]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = '+' + w.map((x) => '-'.repeat(x + 2)).join('+') + '+';
  const fmt = (r: string[]): string => '| ' + r.map((c, i) => c.padEnd(w[i])).join(' | ') + ' |';
  return [line, fmt(headers), line, ...rows.map(fmt), line].join('\n');
}

export async function cmdStatus(socket: string, json: boolean, print: (s: string) => void): Promise<void> {
  const st = (await callApi(socket, 'status')) as {
    node: string;
    peers: PeerStatusRow[];
    datastore?: { type: string; name: string; connected: boolean; lastError?: string };
  };
  if (json) {
    print(JSON.stringify(st.datastore ? { peers: st.peers, datastore: st.datastore } : { peers: st.peers }));
    return;
  }
  print(`calitap process is running (node ${st.node}).`);
  if (st.datastore) {
    const ds = st.datastore;
    const state = ds.connected
      ? 'connected'
      : `DOWN (${ds.lastError ?? 'unreachable'}); forwarding unchanged`;
    print(`Datastore: ${ds.type} ${ds.name}: ${state}`);
  }
  print('\nIPv4 BGP status');
  if (st.peers.length === 0) print('No IPv4 peers found.');
  else {
    print(
      table(
        ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
        st.peers.map((p) => [p.peerAddress, p.peerType, p.state, p.since, p.info]),
      ),
    );
  }
}

export async function cmdRoutes(socket: string, json: boolean, print: (s: string) => void): Promise<void> {
  const routes = (await callApi(socket, 'routes')) as RouteRow[];
  if (json) {
    print(JSON.stringify(routes));
    return;
  }
  print(
    table(
      ['PREFIX', 'NEXT HOP', 'VIA', 'PORT', 'SOURCE'],
      routes.map((r) => [r.prefix, r.nextHop ?? '-', r.via, r.port ?? '-', r.source]),
    ),
  );
}

export async function cmdStats(socket: string, json: boolean, print: (s: string) => void): Promise<void> {
  const st = (await callApi(socket, 'stats')) as StatsView;
  if (json) {
    print(JSON.stringify(st));
    return;
  }
  print(
    table(
      ['PORT', 'RX', 'RX-BYTES', 'TX', 'TX-BYTES', 'TX-DROPPED'],
      st.ports.map((p) => [
        p.port,
        String(p.rxPackets),
        String(p.rxBytes),
        String(p.txPackets),
        String(p.txBytes),
        String(p.txDropped ?? 0),
      ]),
    ),
  );
  print(
    table(
      ['NODE', 'REASON', 'COUNT'],
      st.counters.map((c) => [c.node, c.reason, String(c.count)]),
    ),
  );
}

export async function cmdWorkload(
  socket: string,
  action: 'add' | 'del' | 'list',
  params: Record<string, unknown>,
  json: boolean,
  print: (s: string) => void,
): Promise<void> {
  const res = await callApi(socket, `workload.${action}`, params);
  if (json || action !== 'list') {
    print(JSON.stringify(res));
    return;
  }
  const rows = res as { name: string; netns: string; ip: string; mac: string; tap: string }[];
  print(
    table(
      ['NAME', 'NETNS', 'IP', 'MAC', 'INTERFACE'],
      rows.map((r) => [r.name, r.netns, r.ip, r.mac, r.tap]),
    ),
  );
}
