"""Real components for integration tests and local development.

Prometheus (Debian's binary) and a Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager built by e2e/cluster/build.sh) run as plain loopback processes.
"""
