import Testing
import WardenConfig
@testable import WardenPreflight

@Suite("preflight: software and model checks")
struct SoftwareAndModelCheckTests {
    let site = "/venv/lib/python3.12/site-packages"

    @Test("a driver older than torch's CUDA fails; CPU-only or missing torch fails")
    func cudaDriver() {
        var host = FakeHost.healthy()
        #expect(outcome("cuda.driver", host: host).detail == "driver CUDA 13.0 ≥ torch CUDA 12.8")
        host.nvml.cudaDriverVersion = 12020
        let old = outcome("cuda.driver", host: host)
        #expect(old.status == .fail)
        #expect(old.detail.contains("driver supports CUDA 12.2, torch was built for CUDA 12.8"))
        var cpu = FakeHost.healthy()
        cpu.file("\(site)/torch/version.py", "__version__ = '2.9.0+cpu'\ncuda: Optional[str] = None\n")
        #expect(outcome("cuda.driver", host: cpu).detail.contains("CPU-only"))
        var missing = FakeHost.healthy()
        missing.files["\(site)/torch/version.py"] = nil
        missing.contents["\(site)/torch/version.py"] = nil
        #expect(outcome("cuda.driver", host: missing).detail.contains("torch is not installed"))
    }

    @Test("vllm.install needs executable python and vllm and a dist-info")
    func install() {
        #expect(outcome("vllm.install", host: FakeHost.healthy()).detail == "vLLM 0.19.1 in /venv")
        var host = FakeHost.healthy()
        host.files["/venv/bin/vllm"]?.isExecutable = false
        #expect(outcome("vllm.install", host: host).detail.contains("is not executable"))
        host.files["/venv/bin/python"] = nil
        #expect(outcome("vllm.install", host: host).detail.contains("/venv/bin/python is missing"))
    }

    @Test("--shutdown-timeout before vLLM 0.18 and removed flags fail; unknown versions skip")
    func flags() {
        var host = FakeHost.healthy()
        host.file("\(site)/vllm-0.19.1.dist-info/METADATA", "Version: 0.17.2\n")
        let old = outcome("vllm.flags", host: host)
        #expect(old.status == .fail)
        #expect(old.detail.contains("--shutdown-timeout"))
        var noDrain = FakeHost.deployment
        noDrain.vllm.shutdownTimeout = 0
        #expect(outcome("vllm.flags", host: host, deployment: noDrain).status == .pass)
        var removed = FakeHost.deployment
        removed.vllm.extraArgs = ["--disable-log-requests"]
        #expect(outcome("vllm.flags", host: FakeHost.healthy(), deployment: removed).status == .pass)
        var newer = FakeHost.healthy()
        newer.file("\(site)/vllm-0.19.1.dist-info/METADATA", "Version: 0.23.0\n")
        #expect(outcome("vllm.flags", host: newer, deployment: removed).detail.contains("removed in vLLM 0.22.0"))
        var unknown = FakeHost.healthy()
        unknown.files["\(site)/vllm-0.19.1.dist-info/METADATA"] = nil
        #expect(outcome("vllm.flags", host: unknown).status == .skip)
    }

    @Test("missing, empty, LFS-pointer and corrupt shards fail")
    func modelShards() {
        let shard = "/models/qwen/model-00002-of-00002.safetensors"
        var missing = FakeHost.healthy()
        missing.files[shard] = nil
        #expect(outcome("model.files", host: missing).detail.contains("is missing"))
        var empty = FakeHost.healthy()
        empty.file(shard, [UInt8]())
        #expect(outcome("model.files", host: empty).detail.contains("is empty"))
        var pointer = FakeHost.healthy()
        pointer.file(shard, "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 4900000000\n")
        #expect(outcome("model.files", host: pointer).detail.contains("Git LFS pointer"))
        var corrupt = FakeHost.healthy()
        corrupt.file(shard, [UInt8](repeating: 0xFF, count: 64))
        #expect(outcome("model.files", host: corrupt).detail.contains("no valid safetensors header"))
    }

    @Test("missing config or tokenizer fails; pickle weights and auto_map warn")
    func modelFiles() {
        var noTokenizer = FakeHost.healthy()
        noTokenizer.files["/models/qwen/tokenizer.json"] = nil
        #expect(outcome("model.files", host: noTokenizer).detail.contains("no tokenizer"))
        var noConfig = FakeHost.healthy()
        noConfig.files["/models/qwen/config.json"] = nil
        #expect(outcome("model.files", host: noConfig).detail.contains("config.json is missing"))
        var pickle = FakeHost.healthy()
        pickle.file("/models/qwen/pytorch_model.bin", "x")
        #expect(outcome("model.files", host: pickle).status == .warn)
        var custom = FakeHost.healthy()
        custom.file("/models/qwen/config.json", #"{"num_attention_heads":28,"auto_map":{"AutoModel":"x.Y"}}"#)
        #expect(outcome("model.files", host: custom).detail.contains("auto_map"))
        var missingDirectory = FakeHost.healthy()
        missingDirectory.files["/models/qwen"] = nil
        #expect(outcome("model.files", host: missingDirectory).status == .fail)
    }

    @Test("a hub model must be cached when the unit has no network; a missing local directory is not 'offline-ready'")
    func offline() {
        var deployment = FakeHost.deployment
        deployment.vllm.model = "Qwen/Qwen2.5-7B-Instruct"
        var host = FakeHost.healthy()
        let failed = outcome("model.offline", host: host, deployment: deployment)
        #expect(failed.status == .fail)
        #expect(failed.hint?.contains("huggingface-cli download Qwen/Qwen2.5-7B-Instruct") == true)
        host.file("/var/lib/vllm/hf/hub/models--Qwen--Qwen2.5-7B-Instruct/refs/main", "abc")
        #expect(outcome("model.offline", host: host, deployment: deployment).status == .warn)
        deployment.vllm.environment["HF_HUB_OFFLINE"] = "1"
        #expect(outcome("model.offline", host: host, deployment: deployment).status == .pass)
        var local = FakeHost.deployment
        #expect(outcome("model.offline", host: host, deployment: local).status == .pass)
        local.vllm.environment["HF_HUB_OFFLINE"] = "0"
        #expect(outcome("model.offline", host: host, deployment: local).status == .warn)
        host.files["/models/qwen"] = nil
        let missing = outcome("model.offline", host: host, deployment: local)
        #expect(missing.status == .skip && missing.detail.contains("see model.files"), "a missing directory never passes")
    }

    @Test("heads not divisible by TP, too long a context and bf16 on old GPUs fail")
    func fit() {
        var deployment = FakeHost.deployment
        deployment.vllm.tensorParallelSize = 3
        #expect(outcome("model.fit", host: FakeHost.healthy(), deployment: deployment).detail.contains("not divisible by tensor_parallel_size 3"))
        var long = FakeHost.deployment
        long.vllm.maxModelLen = 65_536
        #expect(outcome("model.fit", host: FakeHost.healthy(), deployment: long).detail.contains("exceeds the model's max_position_embeddings 32768"))
        var turing = FakeHost.healthy()
        turing.nvml.selected[0].computeCapability = (7, 5)
        #expect(outcome("model.fit", host: turing).detail.contains("bfloat16"))
        #expect(outcome("model.fit", host: FakeHost.healthy()).status == .pass)
    }
}
