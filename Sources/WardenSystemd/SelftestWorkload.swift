/// The CUDA smoke test `warden selftest` runs with the venv's Python inside the vLLM sandbox: NVML, the CUDA
/// driver, a torch allocation and matmul, a Triton kernel (JIT, caches, W^X), and cache writes. Prints one
/// JSON line of step results; exits 1 at the first failing step.
enum SelftestWorkload {
    static let python = #"""
import ctypes, json, os, sys, time
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
step("nvml", nvml)
step("cuda-driver", cuda_driver)
step("torch", torch_kernel)
step("triton", triton_kernel)
step("caches", caches)
print(json.dumps({"ok": True, "steps": steps}), flush=True)
"""#
}
