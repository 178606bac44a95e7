extension Deployment {
    /// Every cache and state location the vLLM stack writes, redirected under `paths.state` and `paths.cache`
    /// so the sandboxed unit (read-only OS and home) can write them. The unit exports these variables and
    /// `warden preflight` probes each one as the service user: one definition serves both.
    public var cacheEnvironment: [(name: String, path: String)] {
        let state = paths.state, cache = paths.cache
        return [
            ("HOME", state),
            ("XDG_CACHE_HOME", cache),
            ("VLLM_CACHE_ROOT", cache + "/vllm"),
            ("HF_HOME", state + "/hf"),
            ("TRITON_CACHE_DIR", cache + "/triton"),
            ("TORCHINDUCTOR_CACHE_DIR", cache + "/inductor"),
            ("NUMBA_CACHE_DIR", cache + "/numba"),
            ("CUDA_CACHE_PATH", cache + "/nv"),
        ]
    }

    /// The environment of the vLLM process: cache redirection, telemetry off, offline hub for local models,
    /// then the operator's own `vllm.environment` (which wins).
    public var vllmEnvironment: [(name: String, value: String)] {
        var variables = cacheEnvironment.map { (name: $0.name, value: $0.path) }
        variables += [("VLLM_NO_USAGE_STATS", "1"), ("DO_NOT_TRACK", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1")]
        if vllm.isLocalModel { variables.append(("HF_HUB_OFFLINE", "1")) }
        for (name, value) in vllm.environment.sorted(by: { $0.key < $1.key }) {
            variables.removeAll { $0.name == name }
            variables.append((name, value))
        }
        return variables
    }
}

extension Deployment.VLLM {
    /// A model given as a directory (rather than a Hugging Face name to download).
    public var isLocalModel: Bool { model.hasPrefix("/") }
}
