import WardenJSON

/// The fields of a model's `config.json` that decide whether vLLM can load it as configured.
public struct ModelConfig {
    var numAttentionHeads: Int?
    var maxPositionEmbeddings: Int?
    var hasRopeScaling: Bool
    var torchDtype: String?
    /// `auto_map` is present: the model ships custom Python code.
    public var autoMap: Bool
    var parseError: String?

    public init(_ bytes: [UInt8]) {
        do {
            let document = try JSONValue.parse(bytes)
            // Multimodal configs nest the language model's fields under text_config.
            let text = document["text_config"] ?? document
            numAttentionHeads = text["num_attention_heads"]?.intValue ?? document["num_attention_heads"]?.intValue
            maxPositionEmbeddings = text["max_position_embeddings"]?.intValue ?? document["max_position_embeddings"]?.intValue
            hasRopeScaling = !(text["rope_scaling"]?.isNull ?? true)
            torchDtype = (document["torch_dtype"] ?? document["dtype"])?.stringValue
            autoMap = document["auto_map"] != nil
            parseError = nil
        } catch {
            numAttentionHeads = nil
            maxPositionEmbeddings = nil
            hasRopeScaling = false
            torchDtype = nil
            autoMap = false
            parseError = error.description
        }
    }
}
