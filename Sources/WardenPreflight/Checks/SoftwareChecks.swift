/// Checks of the installed software: CUDA versions, the vLLM venv, and the configured flags.
enum SoftwareChecks {
    static let all: [PreflightCheck] = [cudaDriver, install, flags]

    static let cudaDriver = PreflightCheck("cuda.driver", "the driver supports the CUDA version torch was built for", budget: .seconds(8)) { context in
        let venv = context.deployment.vllm.venv
        guard let python = PythonEnvironment(venv: venv, host: context.host) else {
            return .fail("no Python site-packages under \(venv)/lib", hint: "create the venv and install vLLM: `python3 -m venv \(venv) && \(venv)/bin/pip install vllm`")
        }
        guard let torchCUDA = python.torchCUDA(host: context.host) else {
            return .fail("torch is not installed in \(venv) (no torch/version.py)", hint: "install vLLM, which brings its torch: `\(venv)/bin/pip install vllm`")
        }
        guard let wheel = torchCUDA, let wheelVersion = DottedVersion(wheel) else {
            return .fail("torch in \(venv) is a CPU-only build", hint: "install a CUDA build of torch (the one vLLM pins)")
        }
        let report = context.nvml
        if let unavailable = context.nvmlUnavailableOutcome { return unavailable }
        guard let driver = report.cudaDriverVersion else {
            return .fail("NVML did not report the driver's CUDA version", hint: "update the NVIDIA driver")
        }
        let driverText = GPUChecks.cudaVersionText(driver)
        guard let driverVersion = DottedVersion(driverText), !(driverVersion < wheelVersion) else {
            return .fail("driver supports CUDA \(driverText), torch was built for CUDA \(wheel)",
                         hint: "upgrade the NVIDIA driver (CUDA 12.x wheels need ≥ 525, 13.x ≥ 580) or install a vLLM/torch build for CUDA \(driverText)")
        }
        return .pass("driver CUDA \(driverText) ≥ torch CUDA \(wheel)")
    }

    static let install = PreflightCheck("vllm.install", "the venv has python and the vllm entry point") { context in
        let venv = context.deployment.vllm.venv
        var outcomes: [CheckOutcome] = []
        for program in ["python", "vllm"] {
            let path = "\(venv)/bin/\(program)"
            guard let info = context.host.fileInfo(path) else {
                outcomes.append(.fail("\(path) is missing", hint: "create the venv and install vLLM: `python3 -m venv \(venv) && \(venv)/bin/pip install vllm`"))
                continue
            }
            if !info.isExecutable { outcomes.append(.fail("\(path) is not executable", hint: "`chmod 755 \(path)`")) }
        }
        let version = PythonEnvironment(venv: venv, host: context.host)?.version(of: "vllm", host: context.host)
        if version == nil, outcomes.isEmpty {
            outcomes.append(.fail("no vllm-*.dist-info in \(venv)", hint: "reinstall vLLM: `\(venv)/bin/pip install --force-reinstall vllm`"))
        }
        return .combine(outcomes, passing: "vLLM \(version ?? "?") in \(venv)")
    }

    /// Flags whose availability depends on the vLLM version, with the versions that accept them.
    static let versionedFlags: [(flag: String, minimum: String?, removedIn: String?, note: String)] = [
        ("--shutdown-timeout", "0.18.0", nil, "graceful drain on SIGTERM"),
        ("--disable-log-requests", nil, "0.22.0", "deprecated; request logging is off by default in newer versions"),
    ]

    static let flags = PreflightCheck("vllm.flags", "configured vllm serve flags are valid for the installed version") { context in
        let vllm = context.deployment.vllm
        guard let text = PythonEnvironment(venv: vllm.venv, host: context.host)?.version(of: "vllm", host: context.host),
              let installed = DottedVersion(text) else {
            return .skip("vLLM version unknown (see vllm.install)")
        }
        var used = vllm.extraArgs.filter { $0.hasPrefix("--") }.map { String($0.split(separator: "=").first ?? "") }
        if vllm.shutdownTimeout > 0 { used.append("--shutdown-timeout") }
        var outcomes: [CheckOutcome] = []
        for entry in versionedFlags where used.contains(entry.flag) {
            if let minimum = entry.minimum, let version = DottedVersion(minimum), installed < version {
                let fix = entry.flag == "--shutdown-timeout" ? "set vllm.shutdown_timeout: 0 or upgrade vLLM" : "remove it from vllm.extra_args or upgrade vLLM"
                outcomes.append(.fail("\(entry.flag) (\(entry.note)) needs vLLM ≥ \(minimum); \(text) is installed and would exit with `unrecognized arguments`", hint: fix))
            }
            if let removed = entry.removedIn, let version = DottedVersion(removed), !(installed < version) {
                outcomes.append(.fail("\(entry.flag) was removed in vLLM \(removed); \(text) is installed", hint: "remove it from vllm.extra_args"))
            }
        }
        if used.contains("--trust-remote-code") {
            outcomes.append(.warn("--trust-remote-code runs Python code shipped with the model", hint: "review the model's *.py files, or drop the flag"))
        }
        return .combine(outcomes, passing: "\(used.count) flag(s) valid for vLLM \(text)")
    }
}
