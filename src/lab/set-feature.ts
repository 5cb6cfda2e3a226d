// `node dist/src/lab/set-feature.js <ifname> gro|tso on|off`: turns an offload feature on or off for
// an interface of the current network namespace (the lab runs it with `ip netns exec`), through the
// addon's legacy SIOCETHTOOL ioctl: the same as `ethtool -K <ifname> gro on`, for machines without
// ethtool. Prints the state read back. Used by Lab (uplinkGro) to model a NIC with GRO on.
import { ifFeature, ifSetFeature } from '../dataplane/devices/native.js';

const [name, feature, state] = process.argv.slice(2);
if (name === undefined || (feature !== 'gro' && feature !== 'tso') || (state !== 'on' && state !== 'off')) {
  process.stderr.write('usage: set-feature <ifname> gro|tso on|off\n');
  process.exit(2);
}
ifSetFeature(name, feature, state === 'on');
process.stdout.write(`${name} ${feature} ${ifFeature(name, feature) ? 'on' : 'off'}\n`);
