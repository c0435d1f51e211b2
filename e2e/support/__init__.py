"""Helpers of the e2e suite: the cluster under test, Kubernetes steps, traffic, Prometheus."""
