"""The chat model service (gpuplane-llm): OpenAI chat completions and completions, streamed
token by token as server-sent events. Its own process and image; it imports only itself
and gpuplane.shared."""
