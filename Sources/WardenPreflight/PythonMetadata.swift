import WardenConfig
/// Package versions read from a venv's files, without starting Python.
public struct PythonEnvironment {
    public let sitePackages: String

    /// `<venv>/lib/python3.*/site-packages` (a normal venv has exactly one).
    public init?(venv: String, host: any PreflightHost) {
        guard let pythons = host.listDirectory(venv + "/lib")?.filter({ $0.hasPrefix("python3") }).sorted(),
              let newest = pythons.last else { return nil }
        sitePackages = "\(venv)/lib/\(newest)/site-packages"
    }

    /// `Version:` of `<name>-*.dist-info/METADATA`.
    public func version(of distribution: String, host: any PreflightHost) -> String? {
        let prefix = distribution.lowercased() + "-"
        guard let entry = host.listDirectory(sitePackages)?.first(where: { $0.lowercased().hasPrefix(prefix) && $0.hasSuffix(".dist-info") }),
              let metadata = host.readFile("\(sitePackages)/\(entry)/METADATA", limit: 65_536) else { return nil }
        return String(decoding: metadata, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix("Version:") }
            .map { $0.dropFirst("Version:".count).trimmed() }
    }

    /// The CUDA version torch was built for, from the assignments in `torch/version.py`; `.some(nil)` for CPU builds.
    func torchCUDA(host: any PreflightHost) -> String?? {
        guard let bytes = host.readFile(sitePackages + "/torch/version.py", limit: 65_536) else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("cuda") {
            guard let value = line.split(separator: "=", maxSplits: 1).last?.trimmed() else { continue }
            if value == "None" { return .some(nil) }
            return .some(value.trimming(["'", "\""]))
        }
        return .some(nil)
    }
}

/// Dotted version comparison (`0.18.0` vs `0.9.2`), ignoring suffixes such as `+cu128` or `.dev3`.
struct DottedVersion: Comparable {
    let parts: [Int]

    init?(_ text: String) {
        let core = text.split(whereSeparator: { $0 == "+" || $0 == "-" }).first ?? ""
        let numbers = core.split(separator: ".").map { Int($0.prefix(while: \.isNumber)) }
        guard let first = numbers.first, first != nil else { return nil }
        parts = numbers.prefix(while: { $0 != nil }).map { $0! }
    }

    static func < (lhs: DottedVersion, rhs: DottedVersion) -> Bool {
        for index in 0..<max(lhs.parts.count, rhs.parts.count) {
            let left = index < lhs.parts.count ? lhs.parts[index] : 0
            let right = index < rhs.parts.count ? rhs.parts[index] : 0
            if left != right { return left < right }
        }
        return false
    }
}

import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
