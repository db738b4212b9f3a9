"""GitOps on the local backend: Argo CD's application controller and repo server, redis
and a loopback git server as supervised host processes beside the control plane."""
