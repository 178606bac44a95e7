"""A `warden selftest --workload` file that needs a writable and executable mapping (as numba/JITs do):
it fails under MemoryDenyWriteExecute=yes and passes without it, so selftest must name that directive."""
import mmap, sys

try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC).close()
except PermissionError as error:
    print(f"W^X mapping refused: {error}", flush=True)
    sys.exit(1)
print("W^X mapping granted", flush=True)
