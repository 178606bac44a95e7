import WardenJSON

/// A deterministic, reversible stand-in for a real tokenizer: one token per 4 bytes of UTF-8.
///
/// Token ids pack the bytes they stand for, so `/detokenize` returns exactly what `/tokenize` was given, and the
/// prompt token count in `usage` always equals what `/tokenize` reports for the same input.
public enum FakeTokenizer {
    /// The beginning-of-sequence token added to plain prompts (chat prompts get it from the template instead).
    public static let beginOfSequence = 1

    public static func encode(_ text: String, addSpecialTokens: Bool) -> [Int] {
        let bytes = Array(text.utf8)
        var tokens: [Int] = addSpecialTokens ? [beginOfSequence] : []
        tokens.reserveCapacity(tokens.count + (bytes.count + 3) / 4)
        var start = 0
        while start < bytes.count {
            let chunk = bytes[start..<min(start + 4, bytes.count)]
            var packed = chunk.count << 32
            for (shift, byte) in chunk.enumerated() { packed |= Int(byte) << (8 * shift) }
            tokens.append(packed)
            start += 4
        }
        return tokens
    }

    /// Counts without building the list: what `encode(...).count` would return.
    public static func count(_ text: String, addSpecialTokens: Bool) -> Int {
        (text.utf8.count + 3) / 4 + (addSpecialTokens ? 1 : 0)
    }

    /// Inverse of ``encode(_:addSpecialTokens:)``; `nil` when a token is not one this tokenizer makes.
    public static func decode(_ tokens: [Int]) -> String? {
        var bytes: [UInt8] = []
        for token in tokens where token != beginOfSequence {
            let length = token >> 32
            guard (1...4).contains(length), token & ~((1 << (32 + 3)) - 1) == 0 else { return nil }
            for shift in 0..<length { bytes.append(UInt8((token >> (8 * shift)) & 0xFF)) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The text a chat request is tokenized as (a ChatML-style template, as Qwen models use).
    static func chatPrompt(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var prompt = ""
        for message in messages { prompt += "<|im_start|>\(message.role)\n\(message.content)<|im_end|>\n" }
        if addGenerationPrompt { prompt += "<|im_start|>assistant\n" }
        return prompt
    }

    /// Vocabulary of the pseudo-text the simulator generates: every entry is one token (at most 4 bytes).
    static let words = [" the", " sky", " is", " blue", " and", " a", " cat", " sat", " on", " mat", " we", " go",
                        " to", " sea", " it", " was", " not", " so", " far", " away", ".", ","]

    /// Token `index` of choice `choice` for a prompt whose hash is `seed`: deterministic, cheap, readable.
    static func generatedToken(seed: UInt64, choice: Int, index: Int) -> String {
        let mixed = seed &+ UInt64(truncatingIfNeeded: choice &* 7919 &+ index &* 31)
        return words[Int(mixed % UInt64(words.count))]
    }

    /// FNV-1a over the prompt, the seed of its pseudo-text.
    static func seed(of prompt: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in prompt.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }
}

/// One chat message as the template sees it: text parts are joined, other parts ignored.
struct ChatMessage {
    var role: String
    var content: String
}
