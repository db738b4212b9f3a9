"""A real node on this host: the upstream kubelet with containerd, runc and the CNI
plugins, registering itself with its own credentials (``runtime: kubelet``)."""
