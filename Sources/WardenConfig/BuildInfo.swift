/// Where this binary came from. `scripts/package` stamps the commit and date into the release builds it makes;
/// any other build says `unknown`.
public enum BuildInfo {
    public static let commit = "unknown"
    public static let date = "unknown"

    /// What `warden --version` prints.
    public static var versionLine: String { "\(WardenVersion.string) (commit \(commit), built \(date))" }
}
