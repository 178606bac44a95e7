#!/usr/bin/env python3
"""Tries each action vllm.service's sandbox must forbid and prints one line per action.

Every action is one an unprivileged user could otherwise do (or is told apart by errno from a plain permission
error), so a refusal here is the sandbox's doing. Exits 0 only if every action was refused the expected way.
Usage: sandbox-probe.py [DENIED_IPV4]   (an address the caller put on the container's loopback; default 192.0.2.1)
"""
import errno, mmap, os, socket, sys

denied_ip = sys.argv[1] if len(sys.argv) > 1 else "192.0.2.1"
results = []


def attempt(name, directive, expected, action):
    """Runs action; passes when it raises OSError with one of the expected errnos."""
    try:
        detail = action()
        results.append((name, False, "allowed"))
        print(f"ALLOWED  {name} ({directive}): {detail}", flush=True)
    except OSError as error:
        code = errno.errorcode.get(error.errno, str(error.errno))
        ok = error.errno in expected
        results.append((name, ok, code))
        want = "/".join(errno.errorcode[e] for e in expected)
        print(f"{'REFUSED' if ok else 'WRONG  '}  {name} ({directive}): {code}" + ("" if ok else f", expected {want}: {error}"), flush=True)


def wx_mmap():
    region = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    region.close()
    return "got a writable and executable mapping"


def write_usr():
    # /usr is root's, so an unsandboxed vllm user gets EACCES; only the read-only mount gives EROFS.
    with open("/usr/.warden-e2e-probe", "w") as handle:
        handle.write("x")
    return "wrote /usr/.warden-e2e-probe"


def packet_socket():
    # Without the sandbox an unprivileged user gets EPERM (no CAP_NET_RAW); RestrictAddressFamilies= gives EAFNOSUPPORT.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.close()
    return "opened an AF_PACKET socket"


def connect_outside():
    # The address sits on the container's own loopback, so without IPAddressDeny= this is ECONNREFUSED; the
    # cgroup BPF egress filter drops the SYN instead, which TCP reports as a timeout. Nothing leaves the container.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        sock.connect((denied_ip, 9))
    except socket.timeout:
        raise OSError(errno.ETIMEDOUT, "SYN dropped")
    finally:
        sock.close()
    return f"connected to {denied_ip}:9"


def send_outside():
    # The same filter refuses a UDP datagram synchronously, with EPERM: the exact signature of IPAddressDeny=.
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.sendto(b"warden-e2e", (denied_ip, 9))
    finally:
        sock.close()
    return f"sent a datagram to {denied_ip}:9"


def open_tun():
    # /dev/net/tun is mode 0666 (as udev makes it): anyone may open it unless DevicePolicy=closed refuses it.
    fd = os.open("/dev/net/tun", os.O_RDWR)
    os.close(fd)
    return "opened /dev/net/tun"


def see_pid1():
    # PID 1 belongs to root; ProtectProc=invisible hides other users' processes (ENOENT, as if gone).
    entries = os.listdir("/proc/1")
    return f"/proc/1 is visible ({len(entries)} entries)"


attempt("wx-mmap", "MemoryDenyWriteExecute", {errno.EPERM}, wx_mmap)
attempt("write-usr", "ProtectSystem", {errno.EROFS}, write_usr)
attempt("af-packet", "RestrictAddressFamilies", {errno.EAFNOSUPPORT}, packet_socket)
attempt("tcp-connect-" + denied_ip, "IPAddressDeny", {errno.ETIMEDOUT, errno.EPERM}, connect_outside)
attempt("udp-send-" + denied_ip, "IPAddressDeny", {errno.EPERM}, send_outside)
attempt("open-dev-net-tun", "DevicePolicy", {errno.EPERM}, open_tun)
attempt("see-root-process", "ProtectProc", {errno.ENOENT}, see_pid1)
# One summary line too: `warden selftest` shows only the last line of a passing workload.
refused = sum(ok for _, ok, _ in results)
print(f"probe: {refused} of {len(results)} actions refused: " + " ".join(f"{n}={c}" for n, _, c in results), flush=True)
sys.exit(0 if refused == len(results) else 1)
