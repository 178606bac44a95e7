import WardenJSON

/// Checks of the model directory: completeness, offline coherence, and fit with the parallelism and context length.
enum ModelChecks {
    static let all: [PreflightCheck] = [files, offline, fit]

    static let lfsPointerPrefix = Array("version https://git-lfs.github.com/spec/v1".utf8)

    static let files = PreflightCheck("model.files", "the model directory is complete and safe to load", budget: .seconds(5)) { context in
        let vllm = context.deployment.vllm
        guard vllm.isLocalModel else { return .skip("\(vllm.model) is a hub name, not a directory (see model.offline)") }
        let host = context.host
        let directory = vllm.model
        guard host.fileInfo(directory)?.kind == .directory, let entries = host.listDirectory(directory) else {
            return .fail("\(directory) is not a readable directory", hint: "download the model there (`huggingface-cli download ORG/NAME --local-dir \(directory)`)")
        }
        var outcomes: [CheckOutcome] = []
        if !entries.contains("config.json") {
            outcomes.append(.fail("config.json is missing", hint: "the download is incomplete: download the model again"))
        } else if let config = context.modelConfig(), let error = config.parseError {
            outcomes.append(.fail("config.json is not valid JSON (\(error))", hint: "download the model again"))
        } else if context.modelConfig()?.autoMap == true {
            outcomes.append(.warn("config.json has auto_map: the model ships custom Python code (CVE-2026-22807 class)", hint: "review the model's *.py files before trusting them"))
        }
        if !entries.contains("tokenizer.json") && !entries.contains("tokenizer.model") {
            outcomes.append(.fail("no tokenizer.json or tokenizer.model", hint: "download the tokenizer files too (they are small)"))
        }
        let shards = shardNames(directory: directory, entries: entries, host: host, outcomes: &outcomes)
        if shards.isEmpty && !entries.contains(where: { $0.hasSuffix(".safetensors") }) {
            outcomes.append(.fail("no *.safetensors weights", hint: "download the safetensors weights (vLLM prefers them; pickle weights run code)"))
        }
        for shard in shards { outcomes += inspectShard(directory + "/" + shard, host: host) }
        let pickles = Preflight.pickleWeightFiles(in: entries)
        if !pickles.isEmpty {
            outcomes.append(.warn("pickle weights present (\(pickles.prefix(3).joined(separator: ", "))): loading them can run code",
                                  hint: "remove them when safetensors weights exist, or load with --load-format safetensors"))
        }
        return .combine(outcomes, passing: "config, tokenizer and \(shards.count) safetensors shard(s) present in \(directory)")
    }

    /// Shards named by `model.safetensors.index.json`, or the single `model.safetensors`.
    private static func shardNames(directory: String, entries: [String], host: any PreflightHost, outcomes: inout [CheckOutcome]) -> [String] {
        guard entries.contains("model.safetensors.index.json") else {
            return entries.filter { $0.hasSuffix(".safetensors") }.sorted()
        }
        guard let bytes = host.readFile(directory + "/model.safetensors.index.json", limit: 16 * 1024 * 1024),
              let index = try? JSONValue.parse(bytes), let map = index["weight_map"]?.objectValue else {
            outcomes.append(.fail("model.safetensors.index.json is unreadable or has no weight_map", hint: "download the model again"))
            return []
        }
        var names: [String] = []
        for (_, value) in map { if let name = value.stringValue, !names.contains(name) { names.append(name) } }
        return names.sorted()
    }

    /// A shard exists, is non-empty, is not a Git LFS pointer, and has a sane safetensors header.
    static func inspectShard(_ path: String, host: any PreflightHost) -> [CheckOutcome] {
        guard let info = host.fileInfo(path) else {
            return [.fail("shard \(path) is missing", hint: "the download is incomplete: download the model again")]
        }
        guard info.size > 0 else { return [.fail("shard \(path) is empty", hint: "download it again")] }
        guard let head = host.readFile(path, limit: 64) else { return [.fail("shard \(path) is unreadable", hint: "make it readable by the service user")] }
        if head.starts(with: lfsPointerPrefix) {
            return [.fail("shard \(path) is a Git LFS pointer, not weights (vLLM fails with HeaderTooLarge)",
                          hint: "run `git lfs pull` in the model directory, or download with huggingface-cli")]
        }
        guard head.count >= 9 else { return [.fail("shard \(path) is truncated (\(info.size) bytes)", hint: "download it again")] }
        let headerLength = head.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength < 100_000_000, headerLength + 8 <= info.size, head[8] == UInt8(ascii: "{") else {
            return [.fail("shard \(path) has no valid safetensors header", hint: "the file is corrupt or truncated: download it again")]
        }
        return []
    }

    static let offline = PreflightCheck("model.offline", "the model loads without network access") { context in
        let vllm = context.deployment.vllm
        let environment = context.deployment.vllmEnvironment
        let offlineSet = environment.contains { ($0.name == "HF_HUB_OFFLINE" || $0.name == "TRANSFORMERS_OFFLINE") && $0.value == "1" }
        if vllm.isLocalModel {
            guard context.host.fileInfo(vllm.model)?.kind == .directory else { return .skip("\(vllm.model) is not a directory (see model.files)") }
            guard offlineSet else {
                return .warn("HF_HUB_OFFLINE is not 1 although the model is local: the hub will be contacted at start (and fail under IPAddressDeny=)",
                             hint: "remove HF_HUB_OFFLINE from vllm.environment; Warden sets it for local models")
            }
            return .pass("local model \(vllm.model), HF_HUB_OFFLINE=1")
        }
        let hfHome = environment.last { $0.name == "HF_HOME" }?.value ?? context.deployment.paths.state + "/hf"
        let cached = "\(hfHome)/hub/models--\(vllm.model.replacing("/", with: "--"))/refs/main"
        if context.host.fileInfo(cached) != nil {
            return offlineSet ? .pass("\(vllm.model) is in the hub cache \(hfHome)")
                : .warn("\(vllm.model) is cached, but HF_HUB_OFFLINE is not set: vLLM will try the network first", hint: "set HF_HUB_OFFLINE: \"1\" in vllm.environment")
        }
        return .fail("\(vllm.model) is a hub name and is not in \(hfHome)/hub; the unit denies network access (IPAddressDeny=any)",
                     hint: "download it first (`huggingface-cli download \(vllm.model) --local-dir \(context.deployment.paths.models)/\(vllm.servedModelName)`) and set vllm.model to that directory")
    }

    static let fit = PreflightCheck("model.fit", "the model fits the parallelism and context length") { context in
        let vllm = context.deployment.vllm
        guard vllm.isLocalModel else { return .skip("hub model: config.json is read after download") }
        guard let config = context.modelConfig(), config.parseError == nil else { return .skip("no readable config.json (see model.files)") }
        var outcomes: [CheckOutcome] = []
        if let heads = config.numAttentionHeads, heads % vllm.tensorParallelSize != 0 {
            outcomes.append(.fail("num_attention_heads \(heads) is not divisible by tensor_parallel_size \(vllm.tensorParallelSize)",
                                  hint: "use a tensor_parallel_size that divides \(heads)"))
        }
        if let requested = vllm.maxModelLen, let maximum = config.maxPositionEmbeddings, requested > maximum {
            outcomes.append(config.hasRopeScaling
                ? .warn("max_model_len \(requested) exceeds max_position_embeddings \(maximum); allowed only through rope_scaling", hint: "check the model card for the supported context")
                : .fail("max_model_len \(requested) exceeds the model's max_position_embeddings \(maximum)", hint: "set vllm.max_model_len to at most \(maximum)"))
        }
        if config.torchDtype == "bfloat16", context.nvml.failure == nil,
           let low = context.nvml.selected.first(where: { ($0.computeCapability?.major ?? 9) < 8 }) {
            outcomes.append(.fail("bfloat16 weights need compute capability ≥ 8.0; GPU \(low.index) has \(low.computeCapability!.major).\(low.computeCapability!.minor)",
                                  hint: "add `--dtype float16` to vllm.extra_args"))
        }
        let heads = config.numAttentionHeads.map { "\($0) heads" } ?? "heads unknown"
        let context = config.maxPositionEmbeddings.map { "context \($0)" } ?? "context unknown"
        return .combine(outcomes, passing: "\(heads) over TP \(vllm.tensorParallelSize), \(context)")
    }
}

import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

extension Preflight {
    /// Weight files in pickle formats (loading them can run code), among a model directory's entries.
    public static func pickleWeightFiles(in entries: [String]) -> [String] {
        entries.filter { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") || $0.hasSuffix(".pkl") }
    }
}
