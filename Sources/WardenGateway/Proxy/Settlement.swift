/// The one accounting rule: what a key is charged for an exchange, however it ended.
///
/// What the key pays is never less than what vLLM generated for it. vLLM's final usage is exact and is charged
/// when it was seen. A request vLLM never received, or refused with a 4xx other than 400 (authentication, routing,
/// framing: always before generation), costs nothing. Every other ending — the client left, stalled or was drained,
/// vLLM failed or its connection broke, or answered 400 (which vLLM also returns for errors raised after generating,
/// such as output that cannot be parsed) — is charged the reservation (prompt estimate + every sequence at its cap),
/// or the running usage seen if that is larger: past the moment the gateway stopped reading, it cannot know how far
/// vLLM got.
enum Settlement {
    /// How far an exchange got, as the accounting needs it.
    struct Facts: Equatable {
        /// The request was written to vLLM.
        var sentUpstream: Bool
        /// vLLM's response status, once its head arrived.
        var upstreamStatus: Int?
        /// vLLM's response arrived whole.
        var responseComplete: Bool
        var finalUsage: Usage?
        var runningUsage: Usage?
    }

    static func charge(reserved: Int, _ facts: Facts) -> Int {
        if let final = facts.finalUsage { return final.total }
        guard facts.sentUpstream else { return 0 }
        if let status = facts.upstreamStatus, (401..<500).contains(status), facts.responseComplete { return 0 }
        return max(reserved, facts.runningUsage?.total ?? 0)
    }
}
