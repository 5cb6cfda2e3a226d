#!/usr/bin/python3
"""Writes the sample captures in pcaps/ with scapy (Debian's python3-scapy: run with /usr/bin/python3).

The frames exercise each routing decision of the core against sample-config.yaml as node-a; the
expected outputs of replaying them live in pcaps/expected/ and test/replay checks them frame by frame.
Re-run after changing a scenario: /usr/bin/python3 pcaps/make-samples.py
"""
import os
from scapy.all import ARP, Dot1Q, Ether, ICMP, IP, TCP, UDP, Raw, wrpcap

HERE = os.path.dirname(os.path.abspath(__file__))
EE = "ee:ee:ee:ee:ee:ee"
W1_MAC, W1_IP = "0a:58:0a:41:00:02", "10.65.0.2"  # cali1a2b3c4d5e6
W2_IP = "10.65.0.3"  # cali0123456789a
UPLINK_MAC = "52:54:00:00:00:0a"  # node-a's uplink
NODE_B_MAC = "52:54:00:00:00:0b"
GW_MAC = "52:54:00:00:00:fe"
PAYLOAD = Raw(b"calitap-sample-payload")


def stamp(frames, t0, step=0.010):
    for k, f in enumerate(frames):
        f.time = t0 + k * step
    return frames


workload = stamp(
    [
        # 1: the workload resolves its gateway: answered with ee:ee:ee:ee:ee:ee
        Ether(src=W1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=W1_MAC, psrc=W1_IP, pdst="169.254.1.1"),
        # 2: duplicate-address probe for its own IP (RFC 5227): ignored
        Ether(src=W1_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=W1_MAC, psrc="0.0.0.0", pdst=W1_IP),
        # 3: ping to a workload on the same node: delivered to cali0123456789a
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst=W2_IP, ttl=64, id=1) / ICMP(id=7, seq=1) / PAYLOAD,
        # 4: ping to node-b's block (same subnet, CrossSubnet): routed directly to node-b's MAC
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst="10.65.0.70", ttl=64, id=2) / ICMP(id=7, seq=2) / PAYLOAD,
        # 5: to an unused address of our own block: blackhole
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst="10.65.0.10", id=3) / UDP(sport=5000, dport=53) / PAYLOAD,
        # 6: to the VXLAN pool's remote block on node-c (other subnet): encapsulated (VXLAN Always)
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst="10.66.0.130", id=4) / UDP(sport=5001, dport=80) / PAYLOAD,
        # 7: spoofed source: dropped
        Ether(src=W1_MAC, dst=EE) / IP(src="10.65.0.99", dst=W2_IP, id=5) / UDP(sport=1, dport=2) / PAYLOAD,
        # 8: TTL 1: ICMP time exceeded back to the workload
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst="10.65.0.70", ttl=1, id=6) / UDP(sport=33434, dport=33435) / PAYLOAD,
        # 9: bad IPv4 header checksum: dropped
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst=W2_IP, id=7, chksum=0x1234) / UDP(sport=1, dport=2) / PAYLOAD,
        # 10: IPIP sent by a workload: dropped (Calico forbids it)
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst="10.0.0.2", proto=4, id=8) / IP(src="10.65.0.2", dst="10.65.0.70") / PAYLOAD,
        # 11: VLAN-tagged frame: dropped
        Ether(src=W1_MAC, dst=EE) / Dot1Q(vlan=5) / IP(src=W1_IP, dst=W2_IP) / UDP(sport=1, dport=2) / PAYLOAD,
        # 12: TCP SYN to the outside world via the gateway (natOutgoing applies once NAT is built)
        Ether(src=W1_MAC, dst=EE) / IP(src=W1_IP, dst="192.0.2.10", id=9) / TCP(sport=40000, dport=80, flags="S", seq=1000),
    ],
    1700000000.000,
)

uplink = stamp(
    [
        # 1: node-b's pod answers directly (Never/CrossSubnet same subnet): delivered to the workload
        Ether(src=NODE_B_MAC, dst=UPLINK_MAC) / IP(src="10.65.0.70", dst=W1_IP, ttl=63, id=100) / ICMP(type=0, id=7, seq=2) / PAYLOAD,
        # 2: ARP for the node IP: the host kernel owns it, calitap stays quiet
        Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=GW_MAC, psrc="10.0.0.254", pdst="10.0.0.1"),
        # 3: transit to another node's block arriving on the uplink: never reflected
        Ether(src=GW_MAC, dst=UPLINK_MAC) / IP(src="192.0.2.50", dst="10.65.0.130", id=101) / UDP(sport=9, dport=9) / PAYLOAD,
        # 4: BGP to the node IP: host traffic, not ours
        Ether(src=NODE_B_MAC, dst=UPLINK_MAC) / IP(src="10.0.0.2", dst="10.0.0.1", id=102) / TCP(sport=40179, dport=179, flags="S"),
        # 5: truncated IPv4 (total length beyond the frame): dropped
        Ether(src=NODE_B_MAC, dst=UPLINK_MAC) / IP(src="10.65.0.70", dst=W1_IP, len=400, id=103) / PAYLOAD,
    ],
    1700000000.005,
)

wrpcap(os.path.join(HERE, "demo-workload.pcap"), workload)
wrpcap(os.path.join(HERE, "demo-uplink.pcap"), uplink)
print("wrote demo-workload.pcap (%d frames), demo-uplink.pcap (%d frames)" % (len(workload), len(uplink)))
