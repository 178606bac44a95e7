/// What `warden selftest` runs with the venv's Python inside the vLLM sandbox. Each prints one JSON line of
/// step results and exits 1 at the first failing step.
public enum SelftestWorkload: Sendable, Equatable {
    /// NVML, the CUDA driver, a torch allocation and matmul, a Triton kernel (JIT, caches, W^X), cache writes.
    case cuda
    /// What vLLM's CPU side needs, without a GPU: caches, loopback sockets, shared memory, a spawned process,
    /// CPU affinity. A check of the sandbox mechanism on hosts without a GPU, not of CUDA.
    case cpu
    /// The operator's own Python source, run as given (its exit status decides).
    case custom(source: String)

    /// The Python source passed to `python -c`.
    public var source: String {
        switch self {
        case .cuda: Self.cudaSource
        case .cpu: Self.cpuSource
        case .custom(let source): source
        }
    }

    /// What the workload proves when it passes, for the closing line of the report.
    public var claim: String {
        switch self {
        case .cuda: "CUDA works under vllm.service's sandbox on this host."
        case .cpu: "vLLM's CPU-side needs (caches, sockets, shared memory, processes) work under vllm.service's sandbox; CUDA was not tested."
        case .custom: "The workload passed under vllm.service's sandbox."
        }
    }

    /// What both built-in workloads share: one JSON line of step results, exit 1 at the first failing step, and the
    /// cache-write step.
    static let prelude = #"""
import json, os, sys, time
steps = []
def step(name, action):
    started = time.monotonic()
    try:
        detail = action()
        steps.append({"step": name, "ok": True, "detail": str(detail), "ms": round((time.monotonic() - started) * 1000, 1)})
    except BaseException as error:
        steps.append({"step": name, "ok": False, "detail": f"{type(error).__name__}: {error}"})
        print(json.dumps({"ok": False, "steps": steps}), flush=True)
        sys.exit(1)
def caches():
    written = []
    for name in ("HOME", "VLLM_CACHE_ROOT", "HF_HOME", "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "NUMBA_CACHE_DIR", "CUDA_CACHE_PATH"):
        path = os.environ.get(name)
        if not path:
            continue
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".warden-selftest")
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
        written.append(name)
    return ", ".join(written)
"""#

    static let cpuSource = prelude + "\n" + #"""
import mmap, multiprocessing, socket
from multiprocessing import shared_memory
def loopback():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    peer, _ = server.accept()
    client.sendall(b"ping")
    assert peer.recv(4) == b"ping"
    for handle in (client, peer, server):
        handle.close()
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.close()
    return "TCP on 127.0.0.1 and AF_UNIX sockets"
def shared():
    block = shared_memory.SharedMemory(create=True, size=1 << 20)
    block.buf[0] = 7
    block.close()
    block.unlink()
    return "1 MiB in /dev/shm"
def spawn():
    # A spawned interpreter (as vLLM starts its engine core) and a queue (POSIX semaphores in /dev/shm).
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    queue.put("ok")
    assert queue.get(timeout=10) == "ok"
    process = context.Process(target=time.sleep, args=(0,))
    process.start()
    process.join(60)
    assert process.exitcode == 0, f"child exited {process.exitcode}"
    return f"spawned child {process.pid}"
def affinity():
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    return f"{len(cpus)} CPU(s)"
def memory():
    region = mmap.mmap(-1, 1 << 20, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    region[0:4] = b"test"
    region.close()
    return "anonymous read-write mapping"
if __name__ == "__main__":
    step("caches", caches)
    step("sockets", loopback)
    step("shared-memory", shared)
    step("spawn", spawn)
    step("affinity", affinity)
    step("memory", memory)
    print(json.dumps({"ok": True, "steps": steps}), flush=True)
"""#

    static let cudaSource = prelude + "\n" + #"""
import ctypes
def nvml():
    lib = ctypes.CDLL("libnvidia-ml.so.1")
    code = lib.nvmlInit_v2()
    assert code == 0, f"nvmlInit_v2 returned {code}"
    count = ctypes.c_uint()
    assert lib.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0
    return f"{count.value} GPU(s)"
def cuda_driver():
    lib = ctypes.CDLL("libcuda.so.1")
    code = lib.cuInit(0)
    assert code == 0, f"cuInit returned {code}"
    count = ctypes.c_int()
    assert lib.cuDeviceGetCount(ctypes.byref(count)) == 0
    return f"{count.value} device(s)"
def torch_kernel():
    import torch
    x = torch.randn(1024, 1024, device="cuda", dtype=torch.float16)
    y = (x @ x).float().sum().item()
    pinned = torch.empty(1 << 20, pin_memory=True)
    pinned.copy_(torch.ones(1 << 20)).to("cuda", non_blocking=True)
    torch.cuda.synchronize()
    return f"torch {torch.__version__}, CUDA {torch.version.cuda}, matmul ok ({y:.1f})"
def triton_kernel():
    try:
        import triton, triton.language as tl, torch
    except ImportError:
        return "triton not installed: skipped"
    @triton.jit
    def add(x, y, out, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        tl.store(out + offsets, tl.load(x + offsets, mask=mask) + tl.load(y + offsets, mask=mask), mask=mask)
    a = torch.ones(4096, device="cuda")
    out = torch.empty_like(a)
    add[(4,)](a, a, out, 4096, BLOCK=1024)
    assert float(out.sum()) == 8192.0
    return f"triton {triton.__version__} kernel compiled and ran"
step("nvml", nvml)
step("cuda-driver", cuda_driver)
step("torch", torch_kernel)
step("triton", triton_kernel)
step("caches", caches)
print(json.dumps({"ok": True, "steps": steps}), flush=True)
"""#
}
