"""``gpuplane gpu-exporter``: GPU metrics read from NVML with dcgm-exporter's series names
and labels, each GPU attributed to the pod holding it through the kubelet's pod-resources
API (time-sliced GPUs to every pod sharing them). The fallback where dcgm-exporter cannot
run: no DCGM, consumer GPUs without profiling metrics. Its own process and image."""
