// `calitap run --metrics PORT`: Prometheus metrics on 127.0.0.1 (prom-client, loaded on demand),
// read from the daemon's stats (worker counters summed, policy denials included) at each scrape.
// Control (main) thread. Moved out of daemon.ts unchanged (daemon.ts stays under 600 lines).
import * as http from 'node:http';
import type { StatsView } from './stats.js';

/** What the metrics read. */
export interface MetricsSource {
  stats(): StatsView;
}

export async function startMetrics(d: MetricsSource, port: number): Promise<http.Server> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  new prom.Gauge({
    name: 'calitap_node_counter',
    help: 'Per-node, per-reason packet counters summed over workers',
    labelNames: ['node', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of d.stats().counters) this.set({ node: c.node, reason: c.reason }, c.count);
    },
  });
  new prom.Gauge({
    name: 'calitap_port_packets',
    help: 'Per-port packets summed over workers',
    labelNames: ['port', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of d.stats().ports) {
        this.set({ port: p.port, direction: 'rx' }, p.rxPackets);
        this.set({ port: p.port, direction: 'tx' }, p.txPackets);
      }
    },
  });
  new prom.Gauge({
    name: 'calitap_port_tx_dropped',
    help: 'Per-port frames the port refused to transmit, by reason (queue-full, refused, error), summed over workers',
    labelNames: ['port', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of d.stats().ports)
        for (const [reason, v] of Object.entries(p.txDroppedBy)) this.set({ port: p.port, reason }, v);
    },
  });
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    void registry
      .metrics()
      .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return server;
}
