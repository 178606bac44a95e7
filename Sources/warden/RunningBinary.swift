import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import WardenSystemd

/// The `warden` executable that is running: where it lives, and whether it can run on a host without Swift.
enum RunningBinary {
    /// Where the Debian package installs the binary; units then point here and `warden install` copies nothing.
    static let packagedPath = "/usr/bin/warden"

    static var path: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0] }

    /// The layout units are rendered for: the packaged binary when this is it, else `/usr/local/bin/warden`.
    static func layout(deploymentFile: String) -> InstallLayout {
        var layout = InstallLayout(deploymentFile: deploymentFile)
        if path == packagedPath { layout.wardenBinary = packagedPath }
        return layout
    }

    /// Why `bytes` (an ELF executable) would not start on a GPU host without a Swift toolchain, or `nil`.
    static func toolchainDependency(of bytes: [UInt8], path: String) -> String? {
        // A binary linked against the Swift runtime names libswiftCore.so in its dynamic section.
        let needle = Array("libswiftCore.so".utf8)
        guard bytes.count >= needle.count else { return nil }
        let found = bytes.withUnsafeBufferPointer { buffer in
            var index = 0
            while index <= buffer.count - needle.count {
                if buffer[index] == needle[0], buffer[index + 1] == needle[1], Array(buffer[index..<index + needle.count]) == needle { return true }
                index += 1
            }
            return false
        }
        guard found else { return nil }
        let size = "\(Int((Double(bytes.count) / 1e6).rounded())) MB"
        return "\(path) (\(size)) needs the Swift runtime libraries at run time, which a GPU host does not have"
    }
}
