#!/usr/bin/python3
"""Writes the encapsulation and NAT scenario captures in pcaps/encap/ with scapy.

Run with Debian's python3-scapy: /usr/bin/python3 pcaps/encap/make.py
The cluster is pcaps/encap/cluster.yaml (node-a 10.0.0.1 and node-b 10.0.0.2 on 10.0.0.0/24, node-c
10.1.0.3 behind the router). Every file is the input of ONE port; test/encap and test/nat-graph replay
them (mostly as node-a) and check the outputs with decode.py (scapy) and tshark. Replies that depend on
what calitap chose (NAT ports) are built by the tests from the translated output.
"""
import os

from scapy.all import Ether, ICMP, IP, TCP, UDP, Raw, wrpcap
from scapy.layers.inet import IPOption_Router_Alert, IPOption_RR
from scapy.layers.vxlan import VXLAN

HERE = os.path.dirname(os.path.abspath(__file__))
EE = "ee:ee:ee:ee:ee:ee"

NODE_A, NODE_A_MAC, VTEP_A = "10.0.0.1", "52:54:00:00:00:0a", "66:07:02:c1:cc:60"
NODE_B, NODE_B_MAC, VTEP_B = "10.0.0.2", "52:54:00:00:00:0b", "66:89:3a:22:7a:ac"
NODE_C, NODE_C_MAC, VTEP_C = "10.1.0.3", "52:54:00:00:00:0c", "66:1a:b9:f1:6e:af"
GW_A_MAC = "52:54:00:00:00:fe"  # router on 10.0.0.0/24

# workloads: (interface, ip, mac)
A65 = ("cali-a65", "10.65.0.2", "0a:58:0a:41:00:02")  # IPIP CrossSubnet pool, natOutgoing
A66 = ("cali-a66", "10.66.0.2", "0a:58:0a:42:00:02")  # VXLAN Always pool
A67 = ("cali-a67", "10.67.0.2", "0a:58:0a:43:00:02")  # IPIP Always pool
A68 = ("cali-a68", "10.68.0.2", "0a:58:0a:44:00:02")  # VXLAN CrossSubnet pool, natOutgoing
B66 = ("cali-b66", "10.66.0.66", "0a:58:0a:42:00:42")  # on node-b
C65 = "10.65.0.130"  # on node-c
C66 = "10.66.0.130"

T0 = 1700000000


def payload(n, tag=b"calitap-encap-"):
    """n bytes: a tag then a counting pattern (so a misplaced fragment shows)."""
    body = bytes((k * 7 + 3) & 255 for k in range(max(0, n - len(tag))))
    return Raw((tag + body)[:n])


def pod(w, dst, l4, **ip):
    """A frame a workload sends to its gateway (ee:ee:ee:ee:ee:ee)."""
    return Ether(src=w[2], dst=EE) / IP(src=w[1], dst=dst, **ip) / l4


def sized(w, dst, total, sport, dport, **ip):
    """UDP datagram with IP total length `total`."""
    return pod(w, dst, UDP(sport=sport, dport=dport) / payload(total - 28), **ip)


def stamp(frames, t0, step=0.001):
    for k, f in enumerate(frames):
        f.time = t0 + k * step
    return frames


def write(name, frames):
    wrpcap(os.path.join(HERE, name), frames)
    print("wrote %-28s %3d frames" % (name, len(frames)))


def ipip_from(src, dst, inner, eth_src, eth_dst=NODE_A_MAC, **outer):
    return Ether(src=eth_src, dst=eth_dst) / IP(src=src, dst=dst, proto=4, **outer) / inner


def vxlan_from(src, dst, inner_frame, eth_src, eth_dst=NODE_A_MAC, vni=4096, sport=49152, dport=4789):
    return (
        Ether(src=eth_src, dst=eth_dst)
        / IP(src=src, dst=dst, ttl=64)
        / UDP(sport=sport, dport=dport, chksum=0)
        / VXLAN(flags=0x08, vni=vni)
        / inner_frame
    )


# ------------------------------------------------------------------------------ routing modes (node-a)

# IPIP CrossSubnet (pool 10.65.0.0/16): node-b shares our subnet, node-c does not.
crosssubnet = [
    # 1: to node-b's pod: routed directly (no encapsulation), to node-b's MAC
    pod(A65, "10.65.0.70", ICMP(id=0x101, seq=1) / payload(32), id=11, ttl=64),
    # 2: to node-c's pod: IPIP 10.0.0.1 -> 10.1.0.3 via the router; DF and TOS copied to the outer header
    pod(A65, C65, UDP(sport=5000, dport=7000) / payload(40), id=12, ttl=64, flags="DF", tos=0xB8),
    # 3: TCP SYN to node-c's pod without DF: outer DF clear
    pod(A65, C65, TCP(sport=40001, dport=80, flags="S", seq=1000), id=13, ttl=64),
    # 4: ping to node-c's pod
    pod(A65, C65, ICMP(id=0x102, seq=1) / payload(56), id=14, ttl=64, flags="DF"),
]
write("crosssubnet-cali-a65.pcap", stamp(crosssubnet, T0))

# IPIP Always (pool 10.67.0.0/16): encapsulated even to node-b on our own subnet.
always = [
    # 1: to node-b's pod: IPIP 10.0.0.1 -> 10.0.0.2, outer Ethernet straight to node-b's MAC
    pod(A67, "10.67.0.66", UDP(sport=5100, dport=7100) / payload(24), id=21, ttl=64, flags="DF"),
    # 2: to node-c's pod: IPIP via the router
    pod(A67, "10.67.0.130", TCP(sport=40002, dport=443, flags="S", seq=7), id=22, ttl=64),
]
write("always-cali-a67.pcap", stamp(always, T0))

# VXLAN Always (pool 10.66.0.0/16).
vxlan = [
    # 1, 2: one UDP flow to node-b's pod: same UDP source port both times
    pod(A66, B66[1], UDP(sport=5000, dport=7000) / payload(30, b"vxlan-one-"), id=31, ttl=64, flags="DF"),
    pod(A66, B66[1], UDP(sport=5000, dport=7000) / payload(31, b"vxlan-two-"), id=32, ttl=64, flags="DF"),
    # 3: another flow (other source port) to the same pod
    pod(A66, B66[1], UDP(sport=5001, dport=7000) / payload(30), id=33, ttl=64),
    # 4: ping to node-b's pod
    pod(A66, B66[1], ICMP(id=0x201, seq=1) / payload(48), id=34, ttl=64),
    # 5: TCP to node-c's pod: VXLAN via the router
    pod(A66, C66, TCP(sport=40003, dport=8080, flags="S", seq=99), id=35, ttl=64, tos=0x10),
]
write("vxlan-cali-a66.pcap", stamp(vxlan, T0))

# node-b's pod answers flow 1 (replayed as node-b; node-b's VXLAN output then goes to node-a).
vxlan_reply = [
    Ether(src=B66[2], dst=EE)
    / IP(src=B66[1], dst=A66[1], id=41, ttl=64, flags="DF")
    / UDP(sport=7000, dport=5000)
    / payload(33, b"vxlan-reply-"),
]
write("vxlan-reply-cali-b66.pcap", stamp(vxlan_reply, T0 + 1))

# VXLAN CrossSubnet (pool 10.68.0.0/16).
vxlan_cs = [
    # 1: to node-b's pod: same subnet, routed directly
    pod(A68, "10.68.0.66", UDP(sport=5200, dport=7200) / payload(20), id=51, ttl=64),
    # 2: to node-c's pod: VXLAN via the router
    pod(A68, "10.68.0.130", UDP(sport=5201, dport=7201) / payload(20), id=52, ttl=64),
]
write("vxlan-cs-cali-a68.pcap", stamp(vxlan_cs, T0))

# --------------------------------------------------------------------------- decapsulation (node-a uplink)
inner_ok = IP(src=C65, dst=A65[1], id=61, ttl=63) / UDP(sport=7000, dport=5000) / payload(26, b"ipip-in-")
decap = [
    # 1: IPIP from node-c (known), inner for our pod 10.65.0.2: delivered to cali-a65
    ipip_from(NODE_C, NODE_A, inner_ok, GW_A_MAC, ttl=62),
    # 2: IPIP from an unknown host: dropped (ipip4-input: unknown-peer)
    ipip_from("10.1.0.99", NODE_A, inner_ok, GW_A_MAC, ttl=62),
    # 3: VXLAN from node-c, inner Ethernet to our VTEP: delivered to cali-a66
    vxlan_from(
        NODE_C, NODE_A,
        Ether(src=VTEP_C, dst=VTEP_A) / IP(src=C66, dst=A66[1], id=62, ttl=63) / UDP(sport=7000, dport=5000) / payload(26, b"vxlan-in-"),
        GW_A_MAC,
    ),
    # 4: VXLAN from an unknown host: dropped (vxlan4-input: unknown-peer)
    vxlan_from(
        "10.0.0.99", NODE_A,
        Ether(src=VTEP_C, dst=VTEP_A) / IP(src=C66, dst=A66[1], id=63, ttl=63) / UDP(sport=7000, dport=5000) / payload(26),
        "52:54:00:00:00:99",
    ),
    # 5: VXLAN with another VNI: dropped (wrong-vni)
    vxlan_from(
        NODE_C, NODE_A,
        Ether(src=VTEP_C, dst=VTEP_A) / IP(src=C66, dst=A66[1], id=64, ttl=63) / UDP(sport=7000, dport=5000) / payload(26),
        GW_A_MAC, vni=4097,
    ),
    # 6: VXLAN whose inner Ethernet is for another VTEP: dropped (not-our-vtep)
    vxlan_from(
        NODE_C, NODE_A,
        Ether(src=VTEP_C, dst=VTEP_B) / IP(src=C66, dst=A66[1], id=65, ttl=63) / UDP(sport=7000, dport=5000) / payload(26),
        GW_A_MAC,
    ),
    # 7: IPIP from node-c whose inner packet is for node-b's pod: never reflected (not-for-local-workload)
    ipip_from(NODE_C, NODE_A, IP(src=C65, dst="10.65.0.70", id=66, ttl=63) / UDP(sport=1, dport=2) / payload(8), GW_A_MAC),
    # 8: IPIP from node-b whose inner packet is for the Internet: never reflected
    ipip_from(NODE_B, NODE_A, IP(src="10.65.0.70", dst="8.8.8.8", id=67, ttl=63) / UDP(sport=1, dport=53) / payload(8), NODE_B_MAC),
    # 9: IPIP from node-c whose inner header checksum is wrong: ip4-input drops it (bad-checksum)
    ipip_from(NODE_C, NODE_A, IP(src=C65, dst=A65[1], id=68, ttl=63, chksum=0xBEEF) / UDP(sport=1, dport=2) / payload(8), GW_A_MAC),
    # 10: IPIP in IPIP (inner packet is itself IPIP to our node IP): not decapsulated twice
    ipip_from(NODE_C, NODE_A, IP(src=NODE_C, dst=NODE_A, proto=4, id=69) / inner_ok, GW_A_MAC),
    # 11: VXLAN from node-b whose inner packet is for node-c's pod: never reflected
    vxlan_from(
        NODE_B, NODE_A,
        Ether(src=VTEP_B, dst=VTEP_A) / IP(src=B66[1], dst=C66, id=70, ttl=63) / UDP(sport=1, dport=2) / payload(8),
        NODE_B_MAC,
    ),
    # 12: VXLAN from node-c with the I flag clear: dropped (bad-flags)
    Ether(src=GW_A_MAC, dst=NODE_A_MAC)
    / IP(src=NODE_C, dst=NODE_A)
    / UDP(sport=49152, dport=4789, chksum=0)
    / Raw(bytes([0, 0, 0, 0, 0, 0x10, 0, 0]))
    / Ether(src=VTEP_C, dst=VTEP_A)
    / IP(src=C66, dst=A66[1], id=71)
    / UDP(sport=7000, dport=5000)
    / payload(8),
    # 13: IPIP from node-c to an address that is not our node IP: not decapsulated, not forwarded
    ipip_from(NODE_C, "10.0.0.77", inner_ok, GW_A_MAC),
    # 14: IPIP from node-c whose outer header is a fragment: dropped (fragmented-outer)
    ipip_from(NODE_C, NODE_A, inner_ok, GW_A_MAC, flags="MF"),
]
write("decap-uplink.pcap", stamp(decap, T0))

# -------------------------------------------------------------------------- workloads may not tunnel
workload_tunnel = [
    # 1: IPIP from a pod to node-b: dropped (ipip-from-workload)
    pod(A65, NODE_B, IP(src=A65[1], dst="10.65.0.70") / UDP(sport=1, dport=2) / payload(8), proto=4, id=81),
    # 2: VXLAN from a pod to node-b: dropped (vxlan-from-workload)
    pod(
        A65, NODE_B,
        UDP(sport=40000, dport=4789, chksum=0) / VXLAN(flags=0x08, vni=4096)
        / Ether(src=VTEP_B, dst=VTEP_A) / IP(src=A65[1], dst="10.65.0.3") / UDP(sport=1, dport=2) / payload(8),
        id=82,
    ),
    # 3: VXLAN from a pod straight at our own node IP: dropped too
    pod(
        A65, NODE_A,
        UDP(sport=40000, dport=4789, chksum=0) / VXLAN(flags=0x08, vni=4096)
        / Ether(src=VTEP_B, dst=VTEP_A) / IP(src=A65[1], dst="10.65.0.3") / UDP(sport=1, dport=2) / payload(8),
        id=83,
    ),
]
write("workload-tunnel-cali-a65.pcap", stamp(workload_tunnel, T0))

# --------------------------------------------------------------------------------------------- MTU
# IPIP to node-c: tunnel MTU 1500 - 20 = 1480.
mtu_ipip = [
    # 1: DF, exactly 1480 bytes: fits (outer packet 1500)
    sized(A65, C65, 1480, 6000, 7000, id=91, flags="DF"),
    # 2: DF, 1481 bytes: ICMP fragmentation needed, next-hop MTU 1480, back to the pod
    sized(A65, C65, 1481, 6001, 7000, id=92, flags="DF"),
    # 3: no DF, 1900 bytes: fragmented (RFC 791) into 1476 (20 + 1456, a multiple of 8) + 444
    sized(A65, C65, 1900, 6002, 7000, id=93),
    # 4: no DF, with options (router alert: copied; record route: not copied), 1800 bytes
    pod(
        A65, C65,
        UDP(sport=6003, dport=7000) / payload(1800 - 28 - 16),
        id=94,
        options=[IPOption_Router_Alert(), IPOption_RR(routers=["0.0.0.0"] * 2)],
    ),
    # 5: no DF, itself a first fragment (MF set, offset 0) of 1800 bytes: its pieces all keep MF
    pod(A65, C65, Raw(payload(1800 - 20).load), id=95, flags="MF", proto=17),
    # 6: no DF, a middle fragment at offset 1480 bytes (185 units) with MF: offsets continue from 185
    pod(A65, C65, Raw(payload(1600 - 20).load), id=96, flags="MF", frag=185, proto=17),
]
write("mtu-ipip-cali-a65.pcap", stamp(mtu_ipip, T0))

# VXLAN to node-b: tunnel MTU 1500 - 50 = 1450.
mtu_vxlan = [
    # 1: DF, 1450 bytes: fits (outer packet 1500)
    sized(A66, B66[1], 1450, 6100, 7000, id=101, flags="DF"),
    # 2: DF, 1451: fragmentation needed, MTU 1450
    sized(A66, B66[1], 1451, 6101, 7000, id=102, flags="DF"),
    # 3: no DF, 1900: fragmented into 1444 (20 + 1424, a multiple of 8) + 496, each VXLAN-encapsulated
    sized(A66, B66[1], 1900, 6102, 7000, id=103),
]
write("mtu-vxlan-cali-a66.pcap", stamp(mtu_vxlan, T0))

# Rate limit: 60 oversized DF packets at one instant (burst 50), then one a second later.
burst = [sized(A65, C65, 1490, 6200 + k, 7000, id=200 + k, flags="DF") for k in range(60)]
stamp(burst, T0, step=0)
late = sized(A65, C65, 1490, 6300, 7000, id=300, flags="DF")
late.time = T0 + 1
write("mtu-burst-cali-a65.pcap", burst + [late])

# ---------------------------------------------------------------------------------------------- NAT
nat_out = [
    # 1: TCP SYN to the Internet: masqueraded to the node IP
    pod(A65, "192.0.2.10", TCP(sport=40000, dport=80, flags="S", seq=1000, window=64240), id=111, flags="DF"),
    # 2: UDP to the Internet: masqueraded
    pod(A65, "198.51.100.53", UDP(sport=5353, dport=5300) / payload(20, b"nat-udp-"), id=112),
    # 3: ping to the Internet: masqueraded (ICMP identifier as the port)
    pod(A65, "203.0.113.7", ICMP(type=8, id=0x1234, seq=1) / payload(32, b"nat-ping-"), id=113),
    # 4: to node-b's pod (a pool address): not masqueraded
    pod(A65, "10.65.0.70", TCP(sport=40010, dport=80, flags="S"), id=114),
    # 5: to a VXLAN-pool pod on node-b: not masqueraded (the inner source stays the pod's)
    pod(A65, B66[1], UDP(sport=5400, dport=7000) / payload(10), id=115),
    # 6: to an address of the disabled pool with no block (leaves via the router): not masqueraded
    pod(A65, "10.69.200.1", UDP(sport=5401, dport=7000) / payload(10), id=116),
    # 7: to a block of the disabled pool on node-b: not masqueraded
    pod(A65, "10.69.0.70", UDP(sport=5402, dport=7000) / payload(10), id=117),
]
write("nat-out-cali-a65.pcap", stamp(nat_out, T0))

# another pod with the same source port towards the same server as nat-out's frame 1: another nat port
write(
    "nat-collide-cali-a65b.pcap",
    stamp([pod(("cali-a65b", "10.65.0.3", "0a:58:0a:41:00:03"), "192.0.2.10", TCP(sport=40000, dport=80, flags="S", seq=1), id=118)], T0 + 0.01),
)

nat_other_pools = [
    # from the VXLAN Always pool (no natOutgoing) to the Internet: leaves with the pod's address
    pod(A66, "192.0.2.10", UDP(sport=5500, dport=7000) / payload(10), id=121),
]
write("nat-out-cali-a66.pcap", stamp(nat_other_pools, T0))
write(
    "nat-out-cali-a68.pcap",
    # from the second natOutgoing pool: masqueraded
    stamp([pod(A68, "192.0.2.10", UDP(sport=5600, dport=7000) / payload(10), id=131)], T0),
)

# TCP close (after the SYN of nat-out and the server's SYN-ACK): the pod's ACK then its FIN.
nat_tcp_close = [
    pod(A65, "192.0.2.10", TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001), id=141, flags="DF"),
    pod(A65, "192.0.2.10", TCP(sport=40000, dport=80, flags="FA", seq=1001, ack=5001), id=142, flags="DF"),
]
write("nat-tcp-close-cali-a65.pcap", stamp(nat_tcp_close, T0 + 2))

# Errors calitap itself raises about a pod's packet to the Internet must reach the pod (not the node IP)
nat_errors = [
    # 1: traceroute from a pod (TTL 1): ICMP time exceeded back to the pod, quoting what the pod sent
    pod(A65, "192.0.2.10", UDP(sport=33434, dport=33435) / payload(20), id=171, ttl=1),
    # 2: DF packet larger than the uplink MTU (1500): fragmentation needed back to the pod
    sized(A65, "192.0.2.10", 1600, 6400, 7000, id=172, flags="DF"),
]
write("nat-errors-cali-a65.pcap", stamp(nat_errors, T0))

# Table full (natCapacity 4): six new UDP flows, the last two refused.
write(
    "nat-full-cali-a65.pcap",
    stamp([pod(A65, "192.0.2.20", UDP(sport=7000 + k, dport=9) / payload(8), id=150 + k) for k in range(6)], T0),
)

# natPortRange 4780:4799 (4789 reserved for VXLAN): 20 flows to one server port, 19 ports to hand out.
write(
    "nat-ports-cali-a65.pcap",
    stamp([pod(A65, "192.0.2.30", UDP(sport=6000 + k, dport=9) / payload(8), id=160 + k) for k in range(20)], T0),
)
