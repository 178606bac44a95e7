/// The version printed by `warden --version` and reported by `vllm-sim`'s tools.
public enum WardenVersion {
    public static let string = "0.2.0"
}
