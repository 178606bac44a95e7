/// What one request will generate: how many tokens each choice gets, which text, and why it stops.
struct GenerationPlan {
    let request: GenerationRequest
    /// Tokens each choice produces (all choices advance together, one per step).
    let tokensPerChoice: Int
    /// `stop` when the "model" ends on its own, `length` when `max_tokens` (or `ignore_eos`) ends it.
    let finishReason: String
    private let seeds: [UInt64]

    init(request: GenerationRequest, naturalLength: Int) {
        self.request = request
        if request.ignoreEOS || naturalLength >= request.maxTokens {
            tokensPerChoice = request.maxTokens
            finishReason = "length"
        } else {
            tokensPerChoice = naturalLength
            finishReason = "stop"
        }
        seeds = request.prompts.map { FakeTokenizer.seed(of: $0.text) }
    }

    var choiceCount: Int { request.prompts.count * request.n }

    /// Choice `index` belongs to prompt `index / n`, as vLLM numbers choices of batched prompts.
    func token(choice: Int, step: Int) -> String {
        FakeTokenizer.generatedToken(seed: seeds[choice / request.n], choice: choice % request.n, index: step)
    }

    func text(choice: Int, tokens: Int) -> String {
        (0..<tokens).map { token(choice: choice, step: $0) }.joined()
    }
}

/// Token counts as vLLM reports them in `usage`.
struct Usage {
    var promptTokens: Int
    var completionTokens: Int

    var json: String {
        "{\"prompt_tokens\":\(promptTokens),\"total_tokens\":\(promptTokens + completionTokens),\"completion_tokens\":\(completionTokens)}"
    }

    /// The non-streaming form, which also names `prompt_tokens_details`.
    var detailedJSON: String {
        "{\"prompt_tokens\":\(promptTokens),\"total_tokens\":\(promptTokens + completionTokens),\"completion_tokens\":\(completionTokens),\"prompt_tokens_details\":null}"
    }
}
