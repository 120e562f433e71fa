"""The resource metrics pipeline, as metrics-server: scrape every kubelet's /metrics/resource, keep the last
two samples, serve metrics.k8s.io/v1beta1 NodeMetrics and PodMetrics through the API server
(kubelite.metrics.server)."""
