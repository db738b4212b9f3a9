"""``gpuplane activator``: a reverse proxy in front of Deployments the downscaler may scale
to zero. While a backend has ready endpoints it forwards (bodies streamed both ways);
while it has none it holds the request, asks for a wake at once (an annotation the
downscaler's watch acts on), and forwards when the first endpoint is ready. Its own
process and image."""
