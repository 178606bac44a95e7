import WardenPreflight

/// Settings that run foreign code, open control routes, load unsafe formats, or talk to the Internet.
enum SettingAudit {
    static func findings(_ context: AuditContext) -> [Finding] {
        guard let invocation = context.target.invocation else { return [] }
        let environment = context.target.environment
        var findings: [Finding] = []
        if invocation.has("--trust-remote-code") {
            findings.append(Finding("settings.trust-remote-code", .high, "--trust-remote-code runs the model repository's Python code",
                                    evidence: ["--trust-remote-code in \(context.target.invocationSource ?? "the command line")"],
                                    fix: "remove it unless the model needs it and its *.py files were reviewed and pinned"))
        }
        if environment["VLLM_SERVER_DEV_MODE"] == "1" {
            findings.append(Finding("settings.dev-mode", .critical, "VLLM_SERVER_DEV_MODE=1 opens /collective_rpc, /sleep and cache resets without a key",
                                    evidence: ["VLLM_SERVER_DEV_MODE=1"], fix: "unset VLLM_SERVER_DEV_MODE"))
        }
        if let value = environment["VLLM_ALLOW_INSECURE_SERIALIZATION"], isTrue(value) {
            findings.append(Finding("settings.insecure-serialization", .high, "VLLM_ALLOW_INSECURE_SERIALIZATION lets vLLM's internal channels carry pickle",
                                    evidence: ["VLLM_ALLOW_INSECURE_SERIALIZATION=\(value)"], fix: "unset VLLM_ALLOW_INSECURE_SERIALIZATION"))
        }
        if invocation.has("--enable-auto-tool-choice"), let plugin = invocation.value("--tool-parser-plugin") {
            findings.append(Finding("settings.tool-parser-plugin", .medium, "a custom tool parser plugin is loaded as Python code",
                                    evidence: ["--enable-auto-tool-choice --tool-parser-plugin \(plugin)"],
                                    fix: "use a built-in --tool-call-parser, or make sure the plugin file is root-owned and not writable by the service user"))
        }
        findings += modelFindings(context, invocation: invocation)
        let offline = environment["HF_HUB_OFFLINE"].map(isTrue) ?? false
        let networkDenied = context.target.directives?.values("IPAddressDeny").contains("any") ?? false
        if !offline, !networkDenied {
            findings.append(Finding("settings.hub-online", .low, "HF_HUB_OFFLINE is not set and the network is allowed: vLLM contacts the Hugging Face Hub",
                                    evidence: ["HF_HUB_OFFLINE \(environment["HF_HUB_OFFLINE"].map { "=\($0)" } ?? "unset")", "no IPAddressDeny=any in the unit"],
                                    fix: "download the model ahead of time and set HF_HUB_OFFLINE=1", wardenFix: "warden install"))
        }
        let telemetryOff = environment["VLLM_NO_USAGE_STATS"].map(isTrue) ?? false || environment["DO_NOT_TRACK"].map(isTrue) ?? false
        if !telemetryOff {
            findings.append(Finding("settings.usage-stats", .low, "vLLM's usage statistics are on (reported to stats.vllm.ai)",
                                    evidence: ["neither VLLM_NO_USAGE_STATS=1 nor DO_NOT_TRACK=1"],
                                    fix: "set VLLM_NO_USAGE_STATS=1 and DO_NOT_TRACK=1", wardenFix: "warden install"))
        }
        return findings
    }

    /// The model directory: writable by the service user, pickle weights, custom code through `auto_map`.
    static func modelFindings(_ context: AuditContext, invocation: VLLMInvocation) -> [Finding] {
        guard let model = invocation.model, model.hasPrefix("/"), let entries = context.host.listDirectory(model) else { return [] }
        var findings: [Finding] = []
        let user = context.target.directives?.last("User") ?? "root"
        let readOnly = context.target.directives?.values("ReadOnlyPaths").flatMap { $0.split(separator: " ").map { String($0.drop { $0 == "-" }) } } ?? []
        let coveredReadOnly = readOnly.contains { model == $0 || model.hasPrefix($0 + "/") }
        if !coveredReadOnly, let account = context.host.lookupAccount(user), context.host.probeWrite(directory: model, as: account) == .writable {
            findings.append(Finding("settings.model-writable", .medium, "the service user can change the model it loads",
                                    evidence: ["\(model) is writable by \(user)", "no ReadOnlyPaths= covers it in the unit"],
                                    fix: "chown -R root:root \(model) && chmod -R go-w \(model), and add ReadOnlyPaths=\(model)",
                                    wardenFix: "warden install (ReadOnlyPaths= for the models directory)"))
        }
        let pickles = Preflight.pickleWeightFiles(in: entries)
        if !pickles.isEmpty, !entries.contains(where: { $0.hasSuffix(".safetensors") }) {
            findings.append(Finding("settings.pickle-weights", .high, "the model's weights are pickle files, which run code when loaded",
                                    evidence: ["\(model): \(pickles.prefix(3).joined(separator: ", ")) and no *.safetensors"],
                                    fix: "convert the weights to safetensors or download a safetensors revision, then remove the pickle files"))
        } else if !pickles.isEmpty {
            findings.append(Finding("settings.pickle-weights", .low, "pickle weight files sit next to the safetensors weights",
                                    evidence: ["\(model): \(pickles.prefix(3).joined(separator: ", "))"],
                                    fix: "remove them, or pass --load-format safetensors"))
        }
        if let bytes = context.host.readFile(model + "/config.json", limit: 4 << 20), ModelConfig(bytes).autoMap {
            findings.append(Finding("settings.auto-map", invocation.has("--trust-remote-code") ? .high : .medium,
                                    "config.json has auto_map: the model ships custom Python code",
                                    evidence: ["\(model)/config.json: auto_map" + (invocation.has("--trust-remote-code") ? ", and --trust-remote-code runs it" : "")],
                                    fix: "review and pin the model's *.py files, or use a model vLLM supports natively"))
        }
        return findings
    }

    static func isTrue(_ value: String) -> Bool { ["1", "true", "yes", "on"].contains(value.lowercased()) }
}
