import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

extension Deployment {
    /// The file read when neither `--config` nor `WARDEN_CONFIG` names one.
    public static let defaultPath = "/etc/warden/warden.yaml"

    /// Which file to read: an explicit `--config` wins, then `WARDEN_CONFIG`, then ``defaultPath``.
    /// The path is made absolute: it is written into units, which systemd runs from `/`.
    public static func resolvePath(explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let chosen: String
        if let explicit, !explicit.isEmpty {
            chosen = explicit
        } else if let fromEnvironment = environment["WARDEN_CONFIG"], !fromEnvironment.isEmpty {
            chosen = fromEnvironment
        } else {
            chosen = defaultPath
        }
        guard !chosen.hasPrefix("/") else { return chosen }
        return URL(fileURLWithPath: chosen).standardizedFileURL.path
    }

    /// Reads and validates a deployment file.
    /// - Throws: ``ConfigError`` listing every problem (missing file, YAML syntax, unknown keys, types, ranges).
    public static func load(path: String) throws(ConfigError) -> Deployment {
        guard let data = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            let message = exists
                ? "cannot read the file (check its permissions)"
                : "no such file; write one with `warden config example > \(path)` or point --config / WARDEN_CONFIG at yours"
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: message)])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, issues: [ConfigIssue(path: "", message: "the file is not UTF-8 text")])
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses and validates deployment YAML held in memory.
    public static func parse(yaml: String, file: String = "<input>") throws(ConfigError) -> Deployment {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(yaml)
        } catch {
            throw ConfigError(file: file, issues: [ConfigIssue(path: "", line: error.mark.line, column: error.mark.column,
                                                               message: "YAML syntax error: \(error.message)")])
        }
        guard let root, case .mapping(let mapping, _) = root else {
            let issue = ConfigIssue(path: "", line: root?.mark.line, column: root?.mark.column,
                                    message: "the file must be a mapping with at least `vllm: {model: …}`")
            throw ConfigError(file: file, issues: [issue])
        }
        let issues = IssueCollector()
        let deployment = DeploymentReader(issues: issues).read(MappingReader(mapping, path: "", issues: issues))
        guard let deployment, issues.issues.isEmpty else {
            // Reported in file order, so the list reads top to bottom like the file.
            let ordered = issues.issues.enumerated().sorted { ($0.element.line ?? .max, $0.offset) < ($1.element.line ?? .max, $1.offset) }
            throw ConfigError(file: file, issues: ordered.map(\.element))
        }
        return deployment
    }
}
