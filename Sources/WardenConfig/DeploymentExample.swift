extension Deployment {
    /// A complete, commented deployment file with every key at its default; `warden config example` prints it.
    public static let exampleYAML = """
    # vLLM Warden deployment file: one description of the whole box, read by every `warden` command.
    # Only vllm.model is required; every other value below is the default. Durations take 30, 30s, 10m, 2h or 1d.

    vllm:
      # Local model directory (preferred: offline, verifiable) or a Hugging Face model name.
      model: /srv/models/Qwen2.5-7B-Instruct
      # Name clients put in "model"; defaults to the last path component of `model`.
      served_model_name: Qwen2.5-7B-Instruct
      # Keep vLLM on loopback: only the gateway should reach it.
      host: 127.0.0.1
      port: 8000
      # Share of each GPU's memory vLLM may take (0.05 to 1.0); preflight checks this much is free.
      gpu_memory_utilization: 0.9
      tensor_parallel_size: 1
      pipeline_parallel_size: 1
      # Context length; leave unset to use the model's own maximum.
      # max_model_len: 32768
      # Further `vllm serve` arguments, passed verbatim (never --api-key: it belongs in env_file).
      extra_args: []
      # Virtual environment holding vLLM (bin/vllm, bin/python).
      venv: /opt/vllm/.venv
      # Service account vLLM runs as.
      user: vllm
      group: vllm
      # Seconds vLLM lets in-flight requests finish on stop (--shutdown-timeout, vLLM >= 0.18).
      shutdown_timeout: 30s
      # Extra environment for vLLM, e.g. HF_HUB_OFFLINE: "1".
      environment: {}
      # Holds VLLM_API_KEY=...; mode 0640 root:vllm, written by `warden install`.
      env_file: /etc/warden/vllm.env

    paths:
      # Where model directories live (mounted read-only for vLLM).
      models: /srv/models
      # StateDirectory=vllm and CacheDirectory=vllm of the unit.
      state: /var/lib/vllm
      cache: /var/cache/vllm

    gateway:
      # Where clients (or Caddy/nginx in front) connect.
      listen: 127.0.0.1:8080
      # vLLM's address; defaults to http://<vllm.host>:<vllm.port>.
      upstream: http://127.0.0.1:8000
      # SQLite file with hashed API keys (`warden keys …`).
      key_store: /var/lib/warden/keys.sqlite
      # Everything not listed is answered 404 by the gateway and never reaches vLLM. `{id}` matches one path
      # segment (GET /v1/responses/{id}); every route needs a meter (README: "Routes and their meters").
      allowed_endpoints:
        - POST /v1/chat/completions
        - POST /v1/completions
        - POST /v1/embeddings
        - GET /v1/models
      # Defaults for keys that carry no limits of their own.
      limits:
        # false turns request, token and concurrency limits off (keys, allow-list and bans still apply).
        enabled: true
        # Requests per minute (GCRA: a burst, then a steady rate) and tokens per minute (reserved, then settled).
        requests_per_minute: 60
        burst: 10
        tokens_per_minute: 100000
        concurrency: 8
        global_concurrency: 256
        # In-flight requests per model, all keys together (unset: only the global limit).
        # model_concurrency: 64
        # A lease still held after this long is reclaimed (a last resort; every normal path releases it).
        lease_timeout: 1h
        # The cap given to a chat or completion request that sets none (vLLM would generate up to the context
        # length): written into the request as max_tokens and reported in the x-warden-max-tokens header.
        default_max_tokens: 1024
        # Token quotas per calendar day and month (charged as the per-minute limit settles them), kept across
        # restarts; a key may carry its own (`warden keys create --quota-day/--quota-month`). Unset: none.
        # tokens_per_day: 5000000
        # tokens_per_month: 100000000
        # Where quota days and months begin: UTC or a fixed whole-hour offset (+02:00, UTC-5; no daylight saving).
        quota_time_zone: UTC
      # The usage ledger (`warden usage`): per key, model, route and hour; written once a second.
      usage:
        # Days kept in all; hours older than hourly_days are compacted into days.
        retention_days: 400
        hourly_days: 30
      # fail2ban-style bans for addresses that keep presenting bad keys.
      bans:
        enabled: true
        max_failures: 5
        find_time: 10m
        ban_time: 10m
        # Each repeat ban lasts increment_factor times longer, up to max_ban_time.
        increment_factor: 2
        max_ban_time: 7d
        ignore_networks:
          - 127.0.0.0/8
          - ::1/128
      # On SIGTERM, in-flight requests may finish for this long; remaining streams then get an error event.
      drain_timeout: 30s
      # /healthz, /readyz, /metrics and ban administration; keep it on loopback.
      admin_listen: 127.0.0.1:9091
      # Largest request body accepted (bytes); larger ones get 413.
      max_body_bytes: 4194304
      # Serving TLS directly is not implemented yet (the gateway refuses to start with it): terminate TLS in
      # Caddy/nginx in front and list it in trusted_proxies.
      # tls:
      #   certificate: /etc/warden/tls/cert.pem
      #   private_key: /etc/warden/tls/key.pem
      # Proxies whose X-Forwarded-For is believed (addresses or CIDR networks).
      trusted_proxies: []
      # Client headers passed on to vLLM besides content-type, accept, user-agent, traceparent and tracestate
      # (vLLM acts on some headers, e.g. X-Data-Parallel-Rank: list only what you mean to allow).
      forward_headers: []
      # Client connections at once (more are closed on accept), and from one address (IPv6: one /64; trusted
      # proxies and loopback are exempt, since behind a proxy every client arrives from its address).
      max_connections: 8192
      max_connections_per_address: 256
      # A client that leaves its response unread this long is cut off; its request is charged its reservation.
      write_timeout: 60s
      # Tokens per second of audio on /v1/audio/* (those routes cannot be allowed without it), e.g. 50.
      audio_tokens_per_second: null
      # POST /v1/responses with background: true generates out of the gateway's sight: refused unless true,
      # and then charged its whole reservation.
      allow_background_responses: false
      # Tokens per request for allowed routes Warden has no meter for, e.g. {"POST /invocations": 4000}.
      route_costs: {}

    systemd:
      # W^X protection for vLLM; set false only for features that need it (numba-based n-gram speculation).
      memory_deny_write_execute: true
      # Peers vLLM may reach besides localhost (IPAddressAllow=), e.g. other nodes of a multi-node setup.
      ip_address_allow: []

    """
}
