// Constants of the `udp` uplink mode that the control side needs too (the programmer installs the
// placeholder neighbour); kept apart from the device itself so programming never loads the native addon.

/**
 * The MAC the control plane gives every uplink next hop in udp mode (a static neighbour entry): there
 * is no L2 to resolve, the encapsulation only needs some MAC to write into an outer header that is
 * stripped again before the frame leaves. Locally administered, never on the wire.
 */
export const UDP_NEIGHBOR_MAC = '02:00:00:00:00:00';
